"""medrestore.zoo."""
