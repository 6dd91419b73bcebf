using System.Runtime.CompilerServices;
using AsyncScopes;

// The service's diagnostics (open scopes, the library's meter) are process-wide: one test at a time reads them alone.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Chat.Tests.Support;

internal static class AssemblySetup
{
    /// <summary>Every scope the service opens during the tests records where it was created.</summary>
    [ModuleInitializer]
    internal static void TrackLeaks() => ScopeDiagnostics.LeakTracking = true;
}
