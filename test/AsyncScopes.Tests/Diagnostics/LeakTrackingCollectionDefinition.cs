namespace AsyncScopes.Tests.Diagnostics;

/// <summary>
/// Tests that read or change process-wide diagnostics state (<see cref="ScopeDiagnostics.LeakTracking"/>, unnamed
/// counters): xunit runs this collection alone, after the parallel ones.
/// </summary>
[CollectionDefinition("LeakTracking", DisableParallelization = true)]
public sealed class LeakTrackingCollectionDefinition;
