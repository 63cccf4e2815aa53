"""Content profiles: named sets of reference papers, from files or from the APIs."""
