"""Read-only analyses over numba IR: they never change the IR they read."""
