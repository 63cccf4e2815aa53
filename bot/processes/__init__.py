"""The long-running processes: the web app (`scout serve`) and the clock (`scout scheduler`)."""
