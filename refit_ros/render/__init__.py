"""CPU, headless rendering of recovered bodies over images (no OpenGL, no display)."""
