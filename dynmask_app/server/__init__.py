"""What the server shares between sessions: the runner, the result and figure caches and their keys, the
serving policy, the server-wide resources, the uploads store, static files, the allocator.
"""
