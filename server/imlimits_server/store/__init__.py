"""The only code that speaks Redis: key names, Lua scripts, and the calls that run them."""
