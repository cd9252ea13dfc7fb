"""medrestore.data."""
