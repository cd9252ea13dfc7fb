"""medrestore.physics."""
