"""`python -m cluster`: the local topology (cluster/topology.py) until Ctrl-C."""

from cluster.topology import main

main()
