"""``meshguard up``: the whole stack on localhost, for a first look."""
