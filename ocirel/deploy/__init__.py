"""The deploy side: pin, lint, verify and export from the lockfile.

Nothing here imports the publish side (``publish``, ``backends``) or the network
core (``transport``, ``registry``): registry look-ups are passed in as callables.
"""
