"""The library the three meshguard services share."""
