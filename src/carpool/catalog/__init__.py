"""The parts catalog: grommets, widgets and the parts that join them."""
