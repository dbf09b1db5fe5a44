"""BiDRN-style binarized fitting network (issue 16): 1-bit layers, packed storage, XNOR-popcount."""
