"""One module per `tokes-bench` subcommand (see tokes_bench.cli)."""
