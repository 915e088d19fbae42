"""Importers: turn other tools' training logs into devicebench results directories (`bench import`)."""
