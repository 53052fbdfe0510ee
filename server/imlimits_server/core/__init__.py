"""The pure domain core: editions, add-ons, plan rules and billing.

Plain functions and frozen dataclasses over a plan and a time. Nothing here
reads a clock, speaks Redis or knows gRPC.
"""
