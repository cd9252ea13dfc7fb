"""medrestore.cli."""
