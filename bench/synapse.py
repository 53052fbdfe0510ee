"""`make bench-synapse`: what the Synapse module adds to a Matrix join and a createRoom.

Three homeservers in one run, alike but for their modules: `plain` has none;
`callbacks` has a module that registers the same callbacks as imlimits_synapse
and does nothing in them (what Synapse itself spends on having such
callbacks: it loads the room's state for each); `module` has imlimits_synapse
in front of a real imlimits server (its own redis-server). Requests rotate
over the three, one at a time from one client, so that whatever else the
machine does falls on all alike. Reported per operation: p50 and p99 of each,
what the module adds in all (module - plain) and what its calls to imlimits
add (module - callbacks).
Joins are of distinct users into rooms they are not in (each one a real
JoinGroup); createRooms are private rooms (a dry run and a held CreateGroup).
A message send is measured too: check_event_allowed sees every event, and the
module must not cost it a call.

With holds, the module's log says for each confirmed join how long after the
check the confirmation was made: the window in which a persisted join is
counted but not confirmed, which must stay well inside hold_seconds.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness import RedisProcess, ServerProcess, temp_dir, temp_dirs_removed
from homeserver import SYNAPSE_PYTHON, Answer, HomeserverProcess, Matrix
from imlimits_client import Client, Edition

APP_ID = 1_600_000_001
# The installed distribution's version (synapse.__version__ adds the git branch of the working directory).
_SYNAPSE_VERSION = "import importlib.metadata as m; print(m.version('matrix-synapse'))"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(name: str, runs: int, sites: dict[str, HomeserverProcess],
            act: Callable[[str, int], Answer]) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {site: [] for site in sites}
    for number in range(runs):
        for site in sites:
            answer = act(site, number)
            assert answer.status == 200, f"{name} on {site}: HTTP {answer.status} {answer.body!r}"
            seconds[site].append(answer.seconds)
    return seconds


HEADER = ("{:<11} {:>4} {:>4} {:>8} {:>9} {:>7} {:>8} {:>8}   (ms)"
          .format("operation", "runs", "", "plain", "callbacks", "module", "in all", "calls"))


def report(name: str, seconds: dict[str, list[float]]) -> None:
    for share, label in ((0.5, "p50"), (0.99, "p99")):
        plain, idle, module = (percentile(seconds[site], share) * 1000 for site in ("plain", "callbacks", "module"))
        print("{:<11} {:>4} {:>4} {:>8.1f} {:>9.1f} {:>7.1f} {:>+8.1f} {:>+8.1f}".format(
            name if label == "p50" else "", len(seconds["plain"]) if label == "p50" else "", label, plain, idle,
            module, module - plain, module - idle), flush=True)


def logged_ms(log: str, pattern: str) -> list[float]:
    return [float(ms) for ms in re.findall(pattern.replace("MS", r"(\d+(?:\.\d+)?) ms"), log)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=150, help="createRooms on each homeserver")
    parser.add_argument("--joins", type=int, default=300, help="joins on each homeserver")
    parser.add_argument("--messages", type=int, default=150, help="messages on each homeserver")
    args = parser.parse_args()
    with temp_dirs_removed():
        redis_server = RedisProcess().start()
        limits = ServerProcess("--redis-url", redis_server.url).start()
        client = Client(limits.target, check_timeout=5)
        # ULTIMATE: 1000 rooms per user and 2000 members per room, so that no measured request is refused.
        client.admin.create_app(APP_ID)
        client.admin.upgrade(APP_ID, Edition.ULTIMATE)
        module_config = {"target": limits.target, "app_id": APP_ID, "hold_seconds": 30}
        idle = [{"module": "idle_callbacks.IdleCallbacks", "config": {}}]
        helpers = {"PYTHONPATH": str(Path(__file__).parents[1] / "integrations" / "synapse" / "tests" / "neighbour")}
        sites = {"plain": HomeserverProcess(temp_dir("imlimits-bench-synapse-"), None),
                 "callbacks": HomeserverProcess(temp_dir("imlimits-bench-synapse-"), None, modules_before=idle,
                                                env=helpers),
                 "module": HomeserverProcess(temp_dir("imlimits-bench-synapse-"), module_config)}
        try:
            for homeserver in sites.values():
                homeserver.start()
            run(sites, args)
        finally:
            for homeserver in sites.values():
                homeserver.stop()
            client.close()
            limits.stop()
            redis_server.stop()


def run(sites: dict[str, HomeserverProcess], args: argparse.Namespace) -> None:
    users_per_room = 10
    creators = {site: homeserver.register("creator") for site, homeserver in sites.items()}
    joiners = {site: [homeserver.register(f"joiner-{i}") for i in range(users_per_room)]
               for site, homeserver in sites.items()}
    rooms_needed = -(-args.joins // users_per_room)
    targets = {site: [creators[site].create_room(preset="public_chat").expect(200)["room_id"]
                      for _ in range(rooms_needed)] for site in sites}
    version = subprocess.run([str(SYNAPSE_PYTHON), "-c", _SYNAPSE_VERSION], capture_output=True, text=True,
                             check=True).stdout.strip()
    print(f"Synapse {version}, SQLite, one client, requests rotating over the three homeservers")
    print(HEADER)

    def create(site: str, number: int) -> Answer:
        return creators[site].create_room(name=f"bench {number}")

    def join(site: str, number: int) -> Answer:
        user: Matrix = joiners[site][number % users_per_room]
        return user.join(targets[site][number // users_per_room])

    def message(site: str, number: int) -> Answer:
        return creators[site].send(targets[site][0], f"message {number}")

    report("createRoom", measure("createRoom", args.rooms, sites, create))
    report("join", measure("join", args.joins, sites, join))
    report("message", measure("message", args.messages, sites, message))
    log = sites["module"].log()
    for what, pattern in (("the held JoinGroup, timed in the module", "checked a join in MS"),
                          ("check to confirmation of a join", "confirmed the hold of a join MS after its check")):
        times = logged_ms(log, pattern)
        if times:
            print(f"{what}: p50 {percentile(times, 0.5):.1f} ms, p99 {percentile(times, 0.99):.1f} ms, "
                  f"max {max(times):.1f} ms over {len(times)} joins")
    print("(hold_seconds 30: the window between a persisted join and its confirmation must stay well inside it)")


if __name__ == "__main__":
    main()
