"""Neural style transfer (Gatys et al.) in PyTorch and Pillow."""
