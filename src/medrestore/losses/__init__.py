"""medrestore.losses."""
