// bug: an async lambda given where an Action is taken (the pattern of VSTHRD101, AsyncFixer03, MA0147)
using System;
using System.Threading.Tasks;

sealed class Shutdown
{
    public void OnExit(Func<Task> flush) => AppDomain.CurrentDomain.ProcessExit += async (_, _) => await flush();
}
