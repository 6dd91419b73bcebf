namespace AsyncScopes.Tests.Contexts;

/// <summary>
/// Every public entry of the context managers checks its arguments at the call, before a task exists, and names the
/// argument: a null does not surface later as a <see cref="NullReferenceException"/> or a faulted task.
/// </summary>
public sealed class NullArgumentTests
{
    private static readonly IAsyncContextManager<int> Manager = AsyncContext.Value(1);
    private static readonly Func<CancellationToken, ValueTask<int>> Enter = _ => new ValueTask<int>(1);

    public static TheoryData<string, string, Action<AsyncExitStack>> Calls => new()
    {
        { "WithAsync", "manager", _ => AsyncContext.WithAsync(null!, static (int _, CancellationToken _) => Task.CompletedTask) },
        { "WithAsync", "body", _ => Manager.WithAsync((Func<int, CancellationToken, Task>)null!) },
        { "WithAsync<TResult>", "manager", _ => AsyncContext.WithAsync(null!, static (int value, CancellationToken _) => Task.FromResult(value)) },
        { "WithAsync<TResult>", "body", _ => Manager.WithAsync((Func<int, CancellationToken, Task<int>>)null!) },
        { "Create with an exit", "enter", _ => AsyncContext.Create<int>(null!, static (_, _) => new ValueTask<bool>(false)) },
        { "Create with an exit", "exit", _ => AsyncContext.Create(Enter, (Func<int, Exception?, ValueTask<bool>>)null!) },
        { "Create with a release", "enter", _ => AsyncContext.Create<int>(null!, static _ => ValueTask.CompletedTask) },
        { "Create with a release", "release", _ => AsyncContext.Create(Enter, (Func<int, ValueTask>)null!) },
        { "Of", "open", _ => AsyncContext.Of<IAsyncDisposable>(null!) },
        { "FromIterator", "iterator", _ => AsyncContext.FromIterator<int>(null!) },
        { "EnterAsync", "manager", stack => _ = stack.EnterAsync<int>(null!).AsTask() },
        { "Push", "resource", stack => stack.Push<IAsyncDisposable>(null!) },
        { "PushDisposable", "resource", stack => stack.PushDisposable<IDisposable>(null!) },
        { "Defer", "callback", stack => stack.Defer(null!) },
        { "PushExit", "exit", stack => stack.PushExit(null!) },
        { "RunAsync", "body", _ => AsyncExitStack.RunAsync(null!) },
        { "RunAsync<T>", "body", _ => AsyncExitStack.RunAsync<int>(null!) },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task A_null_argument_throws_at_the_call_naming_it(string entry, string parameter, Action<AsyncExitStack> call)
    {
        await using var stack = new AsyncExitStack();

        var thrown = Assert.Throws<ArgumentNullException>(() => call(stack));

        Assert.True(parameter == thrown.ParamName, $"{entry}: {thrown.ParamName} instead of {parameter}");
        Assert.Equal(0, stack.Count);
        stack.Complete();
    }
}
