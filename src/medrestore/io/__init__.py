"""medrestore.io."""
