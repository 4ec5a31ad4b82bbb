"""atomic-deploy: zero-downtime, atomic releases as pyinfra wanted states.

One module per wanted state (preflight, tree, release, shared, switch, prune), in the order
deploy.py declares them. Beside them: `facts` (the host's deploy root in one round trip),
`plan` (pure decisions), `layout` (names and paths), `config` (the client description),
`release_name`, `rsync` (the upload) and `barrier` (the all-hosts guard before the switch).
"""
