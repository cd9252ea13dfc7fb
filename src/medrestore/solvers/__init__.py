"""medrestore.solvers."""
