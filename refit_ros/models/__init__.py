"""Neural networks: shared layers, the official ReFit network, the HMR baseline."""
