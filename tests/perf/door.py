"""The benchmark's scenarios for seats, the door and the waiting list: mixed into
`bench.Bench`, whose helpers (`sql`, `make_events`, `reset`, `loadgen`, `row`, `Server`)
they use. See tests/perf/README.md."""


class DoorScenarios:
    SCENARIOS = ()  # names of the scenario_<name> methods below, in running order
    FULL = {}  # their sizes in a full run (`--set NAME=VALUE` overrides any)
    QUICK = {}  # and with --quick
