"""Root pytest settings: what ``--doctest-modules`` (pyproject.toml) must not import."""

# importing __main__ runs the command line (python -m e2far_lite)
collect_ignore = ["e2far_lite/__main__.py"]
