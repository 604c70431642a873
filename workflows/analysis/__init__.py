"""Analysis: AnalysisTemplates, planning which metrics run, Argo AnalysisRun semantics, and
running an AnalysisRun inside a workflow."""
