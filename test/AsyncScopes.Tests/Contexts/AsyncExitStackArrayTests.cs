using System.Runtime.CompilerServices;

namespace AsyncScopes.Tests.Contexts;

/// <summary>
/// Runs alone: it counts the bytes this thread allocates, and reads <see cref="ScopeDiagnostics.LeakTracking"/>, a
/// process-wide switch that other tests turn on.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialExitStackTests
{
    public const string Name = "Exit stack tests that must run alone";
}

/// <summary>
/// The exits of a stack live in an array rented from the shared pool: it grows past its first size, and once the exits
/// ran it goes back to the pool, cleared, so that it neither keeps what it held alive nor costs the next stack an array.
/// </summary>
[Collection(SerialExitStackTests.Name)]
public sealed class AsyncExitStackArrayTests
{
    // More than the first array (8 asked, 16 given by the shared pool) holds, and more than the array it grows to.
    private const int ManyExits = 40;

    [Fact]
    public async Task A_stack_holds_more_exits_than_its_first_array_and_runs_each_once_last_in_first_out()
    {
        var ran = new List<int>();
        var stack = new AsyncExitStack();
        for (int i = 0; i < ManyExits; i++)
        {
            int index = i;
            stack.Defer(() =>
            {
                ran.Add(index);
                return ValueTask.CompletedTask;
            });
            Assert.Equal(i + 1, stack.Count);
        }

        stack.Complete();
        await stack.DisposeAsync();

        Assert.Equal(Enumerable.Range(0, ManyExits).Reverse(), ran);
    }

    [Fact]
    public async Task PopAll_moves_more_exits_than_the_first_array_holds_in_order()
    {
        var ran = new List<int>();
        var stack = new AsyncExitStack();
        for (int i = 0; i < ManyExits; i++)
        {
            int index = i;
            stack.PushExit(_ =>
            {
                ran.Add(index);
                return new ValueTask<bool>(false);
            });
        }

        await using var owner = stack.PopAll();
        Assert.Equal(0, stack.Count);
        Assert.Equal(ManyExits, owner.Count);
        stack.Complete();
        await stack.DisposeAsync();
        Assert.Empty(ran);

        owner.Complete();
        await owner.DisposeAsync();
        Assert.Equal(Enumerable.Range(0, ManyExits).Reverse(), ran);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(ManyExits)]
    public void A_closed_stack_keeps_none_of_its_resources_alive(int exits)
    {
        var resources = CloseStackOf(exits);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.All(resources, resource => Assert.False(resource.TryGetTarget(out _), "a closed stack's array still holds a resource"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(ManyExits)]
    public void Closing_a_stack_gives_its_arrays_back_for_the_next_stack(int exits)
    {
        bool tracking = ScopeDiagnostics.LeakTracking;
        ScopeDiagnostics.LeakTracking = false;
        try
        {
            const int Stacks = 100;
            OpenAndClose(Stacks, exits); // warm up: the path compiled, the arrays rented once

            long allocated = OpenAndClose(Stacks, exits);

            // What is left is the stack objects themselves; an array of even 16 entries would be more than that.
            long arrayOf16 = 16 * Unsafe.SizeOf<object>() * 2;
            Assert.True(allocated / Stacks < arrayOf16, $"{allocated / Stacks} bytes a stack");
        }
        finally
        {
            ScopeDiagnostics.LeakTracking = tracking;
        }
    }

    // Opens and closes stacks of exits that complete synchronously; returns the bytes this thread allocated.
    private static long OpenAndClose(int stacks, int exits)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < stacks; i++)
        {
            var stack = new AsyncExitStack();
            for (int j = 0; j < exits; j++)
            {
                stack.Defer(static () => ValueTask.CompletedTask);
            }

            stack.Complete();
            Assert.True(stack.DisposeAsync().AsTask().IsCompletedSuccessfully);
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static List<WeakReference<TrackedResource>> CloseStackOf(int exits)
    {
        var stack = new AsyncExitStack();
        var resources = new List<WeakReference<TrackedResource>>();
        for (int i = 0; i < exits; i++)
        {
            resources.Add(new WeakReference<TrackedResource>(stack.Push(new TrackedResource())));
        }

        stack.Complete();
        Assert.True(stack.DisposeAsync().AsTask().IsCompletedSuccessfully);
        return resources;
    }
}
