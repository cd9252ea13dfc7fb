"""medrestore.inference."""
