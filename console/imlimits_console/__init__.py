"""imlimits-console: the web console for operators (升级, 变配, 停用, usage, history and bills).

An admin client of the gRPC API through imlimits_client, like the command line.
"""
