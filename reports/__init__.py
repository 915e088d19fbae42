"""Reports on results directories: tables, plots, the diagnosis in words, one HTML page. No torch.

from reports.load import load_results
from reports.diagnosis import diagnose

results = load_results(["results/laptop", "results/desktop"])
for finding in diagnose(results):
    print(finding.severity, finding.sentence)
"""
