"""Tensor backends behind one interface: NumPy on the CPU, CuPy on a GPU."""
