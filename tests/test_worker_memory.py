"""A worker paints job after job for days: nothing a job made may outlive it (the soak's RSS check is too coarse
at test sizes to see a leak of a few small tensors per job; this counts them)."""

from __future__ import annotations

import gc

import torch
from PIL import Image

from stylizer.executor import Job, JobDone, JobOptions
from stylizer.executor.runner import job_outcome


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, kind))


def test_jobs_leave_no_tensors_or_images_behind(sample_images, random_vgg):
    content = (sample_images / "content" / "chelsea.jpg").read_bytes()
    style = (sample_images / "style" / "vangogh_wheat_field_with_cypresses.jpg").read_bytes()

    def paint(seed: int) -> None:
        job = Job(job_id=f"job-{seed}", content=content, style=style,
                  options=JobOptions(size=48, steps=3, variants=2, seed=seed))
        assert isinstance(job_outcome(job, random_vgg, device="cpu", previews=True), JobDone)

    paint(0)  # the first job may fill caches that are meant to stay (e.g. a preset's style statistics)
    tensors, images = live(torch.Tensor), live(Image.Image)
    for seed in range(1, 5):
        paint(seed)
    assert live(torch.Tensor) == tensors
    assert live(Image.Image) == images
