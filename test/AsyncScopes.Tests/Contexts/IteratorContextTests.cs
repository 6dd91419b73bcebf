using System.Runtime.CompilerServices;

namespace AsyncScopes.Tests.Contexts;

/// <summary><see cref="AsyncContext.FromIterator{T}"/>: a context manager written as an iterator that yields once.</summary>
public sealed class IteratorContextTests
{
    [Fact]
    public async Task Enter_runs_to_the_yield_and_a_completed_block_runs_the_rest()
    {
        var log = new List<string>();
        var manager = AsyncContext.FromIterator(_ => Connection(log));

        await manager.WithAsync((value, _) =>
        {
            log.Add($"block with {value}");
            return Task.CompletedTask;
        });

        Assert.Equal(["open", "block with connection", "commit", "close"], log);
    }

    [Fact]
    public async Task A_failed_block_runs_only_the_finally_blocks_and_its_exception_goes_on()
    {
        var log = new List<string>();
        var manager = AsyncContext.FromIterator(_ => Connection(log));
        var failure = new FormatException("the block failed");

        var thrown = await Assert.ThrowsAsync<FormatException>(() => manager.WithAsync((_, _) => Task.FromException(failure)));

        Assert.Same(failure, thrown); // never suppressed
        Assert.Equal(["open", "close"], log); // no commit
    }

    [Fact]
    public async Task An_iterator_that_yields_nothing_is_an_error_naming_it_after_its_finally_ran()
    {
        var log = new List<string>();
        var manager = AsyncContext.FromIterator<string>(_ => YieldsNothing(log));
        var ran = false;

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => manager.WithAsync((_, _) =>
        {
            ran = true;
            return Task.CompletedTask;
        }));

        Assert.Contains(nameof(YieldsNothing), thrown.Message, StringComparison.Ordinal);
        Assert.Contains("without yielding", thrown.Message, StringComparison.Ordinal);
        Assert.Equal(["finally"], log);
        Assert.False(ran);
    }

    [Fact]
    public async Task An_iterator_that_yields_twice_is_an_error_naming_it_after_its_finally_ran()
    {
        var log = new List<string>();
        var manager = AsyncContext.FromIterator(_ => YieldsTwice(log));

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => manager.WithAsync((_, _) => Task.CompletedTask));

        Assert.Contains(nameof(YieldsTwice), thrown.Message, StringComparison.Ordinal);
        Assert.Contains("second value", thrown.Message, StringComparison.Ordinal);
        Assert.Equal(["after the first", "finally"], log);
    }

    [Fact]
    public async Task A_failure_before_the_yield_is_enters_and_the_block_does_not_run()
    {
        var failure = new TimeoutException("could not connect");
        var manager = AsyncContext.FromIterator(_ => FailsBeforeYield(failure));
        var ran = false;

        var thrown = await Assert.ThrowsAsync<TimeoutException>(() => manager.WithAsync((_, _) =>
        {
            ran = true;
            return Task.CompletedTask;
        }));

        Assert.Same(failure, thrown);
        Assert.False(ran);
    }

    [Fact]
    public async Task A_failure_after_the_yield_is_exits()
    {
        var failure = new IOException("commit failed");
        var manager = AsyncContext.FromIterator(_ => FailsAfterYield(failure));

        var thrown = await Assert.ThrowsAsync<IOException>(() => manager.WithAsync((_, _) => Task.CompletedTask));

        Assert.Same(failure, thrown);
    }

    [Fact]
    public async Task Enters_token_reaches_the_iterator_and_its_enumerator()
    {
        using var cancellation = new CancellationTokenSource();
        var seen = new List<CancellationToken>();
        var manager = AsyncContext.FromIterator(token =>
        {
            seen.Add(token);
            return Tokens(seen, CancellationToken.None); // the enumerator's token must reach it through GetAsyncEnumerator
        });

        await manager.WithAsync((_, _) => Task.CompletedTask, cancellation.Token);

        Assert.Equal([cancellation.Token, cancellation.Token], seen);
    }

    [Fact]
    public async Task It_can_be_entered_again_once_exited_but_not_while_entered()
    {
        var log = new List<string>();
        var manager = AsyncContext.FromIterator(_ => Connection(log));

        var value = await manager.EnterAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => manager.EnterAsync().AsTask());
        Assert.False(await manager.ExitAsync(null));
        await manager.WithAsync((_, _) => Task.CompletedTask);

        Assert.Equal("connection", value);
        Assert.Equal(["open", "commit", "close", "open", "commit", "close"], log);
        await Assert.ThrowsAsync<InvalidOperationException>(() => manager.ExitAsync(null).AsTask());
    }

    [Fact]
    public async Task Entered_into_an_exit_stack_it_unwinds_in_order()
    {
        var log = new List<string>();

        await AsyncExitStack.RunAsync(async (stack, ct) =>
        {
            await stack.EnterAsync(AsyncContext.FromIterator(_ => Named("first", log)), ct);
            await stack.EnterAsync(AsyncContext.FromIterator(_ => Named("second", log)), ct);
        });

        Assert.Equal(["enter first", "enter second", "exit second", "exit first"], log);
    }

    [Fact]
    public async Task When_disposing_a_failed_iterator_throws_too_both_are_kept_and_the_manager_can_be_entered_again()
    {
        var enumerable = new BrokenEnumerable(new IOException("could not read"), new ObjectDisposedException("cursor"));
        var manager = AsyncContext.FromIterator(_ => enumerable);

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => manager.EnterAsync().AsTask());
        Assert.Equal([typeof(IOException), typeof(ObjectDisposedException)], thrown.InnerExceptions.Select(e => e.GetType()));

        enumerable.Heal();
        Assert.Equal("value", await manager.EnterAsync());
        Assert.False(await manager.ExitAsync(null));
    }

    [Fact]
    public async Task When_disposing_an_iterator_that_yielded_twice_throws_both_errors_are_kept()
    {
        var enumerable = new BrokenEnumerable(moveFailure: null, new ObjectDisposedException("cursor"), values: 2);
        var manager = AsyncContext.FromIterator(_ => enumerable);
        await manager.EnterAsync();

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => manager.ExitAsync(null).AsTask());

        Assert.Equal([typeof(InvalidOperationException), typeof(ObjectDisposedException)], thrown.InnerExceptions.Select(e => e.GetType()));
        Assert.Equal("value", await manager.EnterAsync()); // not "already entered"
    }

    /// <summary>A hand-written iterator whose moves and disposal can fail, as compiler-made ones cannot both.</summary>
    private sealed class BrokenEnumerable(Exception? moveFailure, Exception? disposeFailure, int values = 1) : IAsyncEnumerable<string>, IAsyncEnumerator<string>
    {
        private int _moved;

        public string Current => "value";

        public void Heal() => (moveFailure, disposeFailure, _moved) = (null, null, 0);

        public IAsyncEnumerator<string> GetAsyncEnumerator(CancellationToken cancellationToken = default) => this;

        public ValueTask<bool> MoveNextAsync() =>
            moveFailure is not null ? ValueTask.FromException<bool>(moveFailure) : ValueTask.FromResult(++_moved <= values);

        public ValueTask DisposeAsync()
        {
            _moved = 0;
            return disposeFailure is not null ? ValueTask.FromException(disposeFailure) : ValueTask.CompletedTask;
        }
    }

    private static async IAsyncEnumerable<string> Connection(List<string> log)
    {
        log.Add("open");
        try
        {
            await Task.Yield();
            yield return "connection";
            log.Add("commit");
        }
        finally
        {
            log.Add("close");
        }
    }

    private static async IAsyncEnumerable<string> YieldsNothing(List<string> log)
    {
        try
        {
            await Task.Yield();
            yield break;
        }
        finally
        {
            log.Add("finally");
        }
    }

    private static async IAsyncEnumerable<string> YieldsTwice(List<string> log)
    {
        try
        {
            await Task.Yield();
            yield return "first";
            log.Add("after the first");
            yield return "second";
            log.Add("after the second");
        }
        finally
        {
            log.Add("finally");
        }
    }

    private static async IAsyncEnumerable<string> FailsBeforeYield(Exception failure)
    {
        await Task.Yield();
        throw failure;
#pragma warning disable CS0162 // An iterator needs a yield to be one.
        yield break;
#pragma warning restore CS0162
    }

    private static async IAsyncEnumerable<string> FailsAfterYield(Exception failure)
    {
        await Task.Yield();
        yield return "value";
        throw failure;
    }

    private static async IAsyncEnumerable<int> Tokens(List<CancellationToken> seen, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        seen.Add(cancellationToken);
        await Task.Yield();
        yield return 1;
    }

    private static async IAsyncEnumerable<string> Named(string name, List<string> log)
    {
        log.Add($"enter {name}");
        await Task.Yield();
        yield return name;
        log.Add($"exit {name}");
    }
}
