// bug: Task.Factory.StartNew of an async lambda awaited as if it were the work (the pattern of AsyncFixer05)
using System;
using System.Threading.Tasks;

static class Jobs
{
    public static async Task RunAsync(Func<Task> job)
    {
        await Task.Factory.StartNew(async () => await job());
    }
}
