namespace AsyncScopes.Tests.Contexts;

public sealed class AsyncExitStackTests
{
    [Fact]
    public async Task Exits_run_last_in_first_out()
    {
        var order = new List<string>();
        var disposable = new CallbackDisposable(() => order.Add("disposable"));
        var asyncDisposable = new CallbackAsyncDisposable(() => order.Add("async disposable"));
        var manager = AsyncContext.Create(_ => new ValueTask<int>(1), _ =>
        {
            order.Add("manager");
            return ValueTask.CompletedTask;
        });

        await AsyncExitStack.RunAsync(async (stack, ct) =>
        {
            stack.Defer(() =>
            {
                order.Add("deferred");
                return ValueTask.CompletedTask;
            });
            stack.PushDisposable(disposable);
            await stack.EnterAsync(manager, ct);
            stack.Push(asyncDisposable);
            stack.PushExit(_ =>
            {
                order.Add("exit");
                return new ValueTask<bool>(false);
            });
            Assert.Equal(5, stack.Count);
        });

        Assert.Equal(["exit", "async disposable", "manager", "disposable", "deferred"], order);
    }

    [Fact]
    public async Task Every_exit_runs_even_when_an_earlier_one_threw()
    {
        var first = new FormatException("first to run");
        var second = new ArithmeticException("second to run");
        bool lastRan = false;

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => AsyncExitStack.RunAsync((stack, _) =>
        {
            stack.Defer(() =>
            {
                lastRan = true;
                return ValueTask.CompletedTask;
            });
            stack.Defer(() => throw second);
            stack.Defer(() => throw first);
            return Task.CompletedTask;
        }));

        Assert.True(lastRan);
        Assert.Equal<Exception>([first, second], thrown.InnerExceptions);
    }

    [Fact]
    public async Task Each_exit_sees_the_current_exception()
    {
        var bodyError = new FormatException("body");
        var exitError = new ArithmeticException("exit");
        var seen = new List<Exception?>();

        await AsyncExitStack.RunAsync((stack, _) =>
        {
            stack.PushExit(e => Record(e, suppress: false)); // sees null: suppressed below
            stack.PushExit(e => Record(e, suppress: true)); // sees [body, exit]: suppresses
            stack.PushExit(e =>
            {
                seen.Add(e);
                throw exitError;
            }); // sees body
            stack.PushExit(e => Record(e, suppress: false)); // sees body
            throw bodyError;
        });

        Assert.Equal(4, seen.Count);
        Assert.Same(bodyError, seen[0]);
        Assert.Same(bodyError, seen[1]);
        var combined = Assert.IsType<ScopeExitException>(seen[2]);
        Assert.Equal<Exception>([bodyError, exitError], combined.InnerExceptions);
        Assert.Null(seen[3]);

        ValueTask<bool> Record(Exception? e, bool suppress)
        {
            seen.Add(e);
            return new ValueTask<bool>(suppress);
        }
    }

    [Fact]
    public async Task EnterAsync_registers_the_exit_only_after_enter_succeeded()
    {
        var failing = new RecordingManager<int>(1) { EnterError = new TimeoutException("enter") };
        var working = new RecordingManager<int>(2);
        await using var stack = new AsyncExitStack();

        await Assert.ThrowsAsync<TimeoutException>(() => stack.EnterAsync(failing).AsTask());
        int value = await stack.EnterAsync(working);
        stack.Complete();
        await stack.DisposeAsync();

        Assert.Equal(2, value);
        Assert.Empty(failing.ExitsSeen);
        Assert.Equal([null], working.ExitsSeen);
    }

    [Fact]
    public async Task EnterAsync_passes_the_token_to_enter()
    {
        using var cts = new CancellationTokenSource();
        var manager = new RecordingManager<int>(1);
        await using var stack = new AsyncExitStack();

        await stack.EnterAsync(manager, cts.Token);
        stack.Complete();

        Assert.Equal(cts.Token, manager.EnterToken);
    }

    [Fact]
    public async Task PopAll_moves_the_exits_to_a_new_stack_and_empties_this_one()
    {
        var resources = new[] { new TrackedResource(), new TrackedResource(), new TrackedResource() };
        AsyncExitStack owned;
        await using (var stack = new AsyncExitStack())
        {
            foreach (var resource in resources)
            {
                stack.Push(resource);
            }

            owned = stack.PopAll();
            Assert.Equal(0, stack.Count);
            stack.Complete();
        }

        Assert.All(resources, r => Assert.Equal(0, r.Disposals));
        Assert.Equal(3, owned.Count);
        owned.Complete();
        await owned.DisposeAsync();
        Assert.All(resources, r => Assert.Equal(1, r.Disposals));
    }

    [Fact]
    public async Task A_failure_before_PopAll_closes_what_was_opened()
    {
        var opened = new List<TrackedResource>();
        var error = new IOException("third resource failed to open");

        await Assert.ThrowsAsync<IOException>(() => OpenAllAsync(3));

        Assert.Equal(2, opened.Count);
        Assert.All(opened, r => Assert.Equal(1, r.Disposals));

        async Task<AsyncExitStack> OpenAllAsync(int count)
        {
            await using var stack = new AsyncExitStack();
            for (int i = 0; i < count; i++)
            {
                if (i == 2)
                {
                    throw error;
                }

                var resource = new TrackedResource();
                opened.Add(resource);
                stack.Push(resource);
            }

            var handedOn = stack.PopAll();
            stack.Complete();
            return handedOn;
        }
    }

    [Fact]
    public async Task Registration_during_unwinding_is_rejected()
    {
        var stack = new AsyncExitStack();
        var manager = new RecordingManager<int>(1);
        var resource = new TrackedResource();
        var rejections = new List<Exception?>();
        stack.Defer(() =>
        {
            rejections.Add(Record.Exception(() => stack.Defer(() => ValueTask.CompletedTask)));
            rejections.Add(Record.Exception(() => stack.PushExit(_ => new ValueTask<bool>(false))));
            rejections.Add(Record.Exception(() => stack.Push(resource)));
            rejections.Add(Record.Exception(() => stack.PushDisposable(resource)));
            rejections.Add(Record.Exception(() => { _ = stack.EnterAsync(manager).AsTask(); }));
            rejections.Add(Record.Exception(stack.Complete));
            return ValueTask.CompletedTask;
        });
        stack.Complete();

        await stack.DisposeAsync();

        Assert.Equal(6, rejections.Count);
        Assert.All(rejections, rejection => Assert.IsType<InvalidOperationException>(rejection));
        Assert.Equal(0, manager.Enters);
        Assert.Equal(0, resource.Disposals);
        Assert.Equal(0, stack.Count);
    }

    [Fact]
    public async Task A_registration_rejected_inside_an_exit_is_that_exit_failure()
    {
        var stack = new AsyncExitStack();
        stack.Defer(() =>
        {
            stack.PushExit(_ => new ValueTask<bool>(false));
            return ValueTask.CompletedTask;
        });
        stack.Complete();

        await Assert.ThrowsAsync<InvalidOperationException>(() => stack.DisposeAsync().AsTask());
    }

    [Fact]
    public async Task Registration_after_close_is_rejected()
    {
        var stack = new AsyncExitStack();
        stack.Complete();
        await stack.DisposeAsync();
        var manager = new RecordingManager<int>(1);

        Assert.Throws<InvalidOperationException>(() => stack.Push(new TrackedResource()));
        Assert.Throws<InvalidOperationException>(() => stack.PushDisposable(new TrackedResource()));
        Assert.Throws<InvalidOperationException>(() => stack.Defer(() => ValueTask.CompletedTask));
        Assert.Throws<InvalidOperationException>(() => stack.PushExit(_ => new ValueTask<bool>(false)));
        Assert.Throws<InvalidOperationException>(() => stack.PopAll());
        Assert.Throws<InvalidOperationException>(() => stack.Complete());
        Assert.Throws<InvalidOperationException>(() => { _ = stack.EnterAsync(manager).AsTask(); });
        Assert.Equal(0, manager.Enters);
    }

    [Fact]
    public async Task PopAll_during_unwinding_throws()
    {
        var stack = new AsyncExitStack();
        Exception? rejection = null;
        stack.Defer(() =>
        {
            rejection = Record.Exception(() => stack.PopAll());
            return ValueTask.CompletedTask;
        });

        await stack.DisposeAsync();

        Assert.IsType<InvalidOperationException>(rejection);
    }

    [Fact]
    public async Task A_stack_that_closes_while_a_manager_is_entering_exits_that_manager()
    {
        var stack = new AsyncExitStack();
        var enterGate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var exits = new List<Exception?>();
        var manager = AsyncContext.Create(
            _ => new ValueTask<int>(enterGate.Task),
            (_, e) =>
            {
                exits.Add(e);
                return new ValueTask<bool>(false);
            });

        var entering = stack.EnterAsync(manager).AsTask();
        await stack.DisposeAsync();
        enterGate.SetResult(1);

        await Assert.ThrowsAsync<InvalidOperationException>(() => entering);
        Assert.IsType<ScopeAbandonedException>(Assert.Single(exits));
    }

    [Fact]
    public async Task DisposeAsync_twice_runs_the_exits_once()
    {
        var resource = new TrackedResource();
        var stack = new AsyncExitStack();
        stack.Push(resource);
        stack.Complete();

        await stack.DisposeAsync();
        await stack.DisposeAsync();

        Assert.Equal(1, resource.Disposals);
    }

    [Fact]
    public async Task Disposal_after_Complete_shows_exits_no_exception()
    {
        var seen = new List<Exception?>();
        await using (var stack = new AsyncExitStack())
        {
            stack.PushExit(e =>
            {
                seen.Add(e);
                return new ValueTask<bool>(false);
            });
            stack.Complete();
        }

        Assert.Equal([null], seen);
    }

    [Fact]
    public async Task Disposal_without_Complete_shows_exits_an_abandonment_that_never_escapes()
    {
        var seen = new List<Exception?>();

#pragma warning disable ASC0007 // Abandonment is what this test looks at.
        await using (var stack = new AsyncExitStack())
        {
            stack.PushExit(e => Record(e));
            stack.PushExit(e => Record(e));
        }
#pragma warning restore ASC0007

        Assert.Equal(2, seen.Count);
        Assert.IsType<ScopeAbandonedException>(seen[0]);
        Assert.Same(seen[0], seen[1]);

        ValueTask<bool> Record(Exception? e)
        {
            seen.Add(e);
            return new ValueTask<bool>(false);
        }
    }

    [Fact]
    public async Task Disposal_after_an_early_return_is_abandonment()
    {
        var seen = new List<Exception?>();

        await AbandonAsync(returnEarly: true);

        Assert.IsType<ScopeAbandonedException>(Assert.Single(seen));

        async Task AbandonAsync(bool returnEarly)
        {
#pragma warning disable ASC0007 // The early return is the abandonment this test looks at.
            await using var stack = new AsyncExitStack();
#pragma warning restore ASC0007
            stack.PushExit(e =>
            {
                seen.Add(e);
                return new ValueTask<bool>(false);
            });
            if (returnEarly)
            {
                return;
            }

            stack.Complete();
        }
    }

    [Fact]
    public async Task A_body_exception_passes_through_await_using_while_exits_see_abandonment()
    {
        var seen = new List<Exception?>();
        var error = new FormatException("body");

        var thrown = await Assert.ThrowsAsync<FormatException>(async () =>
        {
            await using var stack = new AsyncExitStack();
            stack.PushExit(e =>
            {
                seen.Add(e);
                return new ValueTask<bool>(false);
            });
            throw error;
        });

        Assert.Same(error, thrown);
        Assert.IsType<ScopeAbandonedException>(Assert.Single(seen));
    }

    [Fact]
    public async Task Disposal_throws_only_what_the_exits_threw()
    {
        var single = new ArithmeticException("single");
        var first = new FormatException("first");
        var second = new IOException("second");

        var abandonedOne = new AsyncExitStack();
        abandonedOne.PushExit(_ => throw single);
        var abandonedTwo = new AsyncExitStack();
        abandonedTwo.Defer(() => throw second);
        abandonedTwo.PushExit(_ => throw first);
        var completedTwo = new AsyncExitStack();
        completedTwo.Defer(() => throw second);
        completedTwo.Defer(() => throw first);
        completedTwo.Complete();

        var thrownOne = await Assert.ThrowsAsync<ArithmeticException>(() => abandonedOne.DisposeAsync().AsTask());
        var thrownTwo = await Assert.ThrowsAsync<ScopeExitException>(() => abandonedTwo.DisposeAsync().AsTask());
        var thrownCompleted = await Assert.ThrowsAsync<ScopeExitException>(() => completedTwo.DisposeAsync().AsTask());

        Assert.Same(single, thrownOne);
        Assert.Equal<Exception>([first, second], thrownTwo.InnerExceptions);
        Assert.Equal<Exception>([first, second], thrownCompleted.InnerExceptions);
    }

    [Fact]
    public async Task An_exit_that_throws_a_ScopeExitException_of_only_the_abandonment_does_not_make_it_escape()
    {
        var stack = new AsyncExitStack();
        stack.PushExit(e => throw new ScopeExitException([e!]));

        await stack.DisposeAsync();

        Assert.Equal(0, stack.Count);
    }

    [Fact]
    public async Task An_exit_that_rethrows_the_abandonment_does_not_make_it_escape()
    {
        var stack = new AsyncExitStack();
        stack.PushExit(e => throw e!);

        await stack.DisposeAsync();

        Assert.Equal(0, stack.Count);
    }

    [Fact]
    public async Task An_exit_that_suppresses_swallows_the_failures_before_it_on_disposal()
    {
        var stack = new AsyncExitStack();
        stack.PushExit(_ => new ValueTask<bool>(true));
        stack.Defer(() => throw new IOException("suppressed by the outer exit"));
        stack.Complete();

        await stack.DisposeAsync();

        Assert.Equal(0, stack.Count);
    }

    [Fact]
    public async Task RunAsync_returns_the_body_result()
    {
        var resource = new TrackedResource();

        int result = await AsyncExitStack.RunAsync((stack, _) =>
        {
            stack.Push(resource);
            return Task.FromResult(42);
        });

        Assert.Equal(42, result);
        Assert.Equal(1, resource.Disposals);
    }

    [Fact]
    public async Task RunAsync_returns_default_when_an_exit_suppressed_an_inner_exit_failure()
    {
        string? result = await AsyncExitStack.RunAsync((stack, _) =>
        {
            stack.PushExit(_ => new ValueTask<bool>(true));
            stack.Defer(() => throw new IOException("inner exit"));
            return Task.FromResult("body result");
        });

        Assert.Null(result);
    }

    [Fact]
    public async Task RunAsync_rethrows_the_body_exception_after_running_the_exits()
    {
        var resource = new TrackedResource();
        var error = new FormatException("body");

        var thrown = await Assert.ThrowsAsync<FormatException>(() => AsyncExitStack.RunAsync((stack, _) =>
        {
            stack.Push(resource);
            return Task.FromException(error);
        }));

        Assert.Same(error, thrown);
        Assert.Equal(1, resource.Disposals);
    }

    [Fact]
    public async Task RunAsync_passes_the_token_to_the_body()
    {
        using var cts = new CancellationTokenSource();
        CancellationToken seen = default;

        await AsyncExitStack.RunAsync((_, ct) =>
        {
            seen = ct;
            return Task.CompletedTask;
        }, cts.Token);

        Assert.Equal(cts.Token, seen);
    }

    [Fact]
    public async Task The_stack_is_itself_a_context_manager()
    {
        var stack = new AsyncExitStack();
        var error = new FormatException("body");
        var seen = new List<Exception?>();
        stack.PushExit(e =>
        {
            seen.Add(e);
            return new ValueTask<bool>(true);
        });

        await stack.WithAsync((entered, _) =>
        {
            Assert.Same(stack, entered);
            return Task.FromException(error);
        });

        Assert.Equal([error], seen);
        await Assert.ThrowsAsync<InvalidOperationException>(() => stack.WithAsync((_, _) => Task.CompletedTask));
    }

    [Fact]
    public async Task ExitAsync_reports_suppression_and_throws_a_changed_outcome()
    {
        var error = new FormatException("body");
        var exitError = new IOException("exit");
        var suppressing = new AsyncExitStack();
        suppressing.PushExit(_ => new ValueTask<bool>(true));
        var passing = new AsyncExitStack();
        passing.PushExit(_ => new ValueTask<bool>(false));
        var failing = new AsyncExitStack();
        failing.PushExit(_ => throw exitError);

        bool suppressed = await suppressing.ExitAsync(error);
        bool passed = await passing.ExitAsync(error);
        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => failing.ExitAsync(error).AsTask());
        bool again = await failing.ExitAsync(error);

        Assert.True(suppressed);
        Assert.False(passed);
        Assert.Equal<Exception>([error, exitError], thrown.InnerExceptions);
        Assert.False(again);
    }

    [Fact]
    public async Task A_stack_used_as_an_exit_does_not_list_the_body_exception_twice()
    {
        var error = new FormatException("body");
        var exitError = new IOException("inner stack exit");

        var thrown = await Assert.ThrowsAsync<ScopeExitException>(() => AsyncExitStack.RunAsync(async (outer, ct) =>
        {
            var inner = await outer.EnterAsync(new AsyncExitStack(), ct);
            inner.PushExit(_ => throw exitError);
            throw error;
        }));

        Assert.Equal<Exception>([error, exitError], thrown.InnerExceptions);
    }

    [Fact]
    public void Null_arguments_throw_ArgumentNullException()
    {
        var stack = new AsyncExitStack();

        Assert.Throws<ArgumentNullException>(() => stack.Push<IAsyncDisposable>(null!));
        Assert.Throws<ArgumentNullException>(() => stack.PushDisposable<IDisposable>(null!));
        Assert.Throws<ArgumentNullException>(() => stack.Defer(null!));
        Assert.Throws<ArgumentNullException>(() => stack.PushExit(null!));
        Assert.Throws<ArgumentNullException>(() => { _ = stack.EnterAsync<int>(null!).AsTask(); });
        Assert.Throws<ArgumentNullException>(() => { _ = AsyncExitStack.RunAsync(null!); });
        Assert.Throws<ArgumentNullException>(() => { _ = AsyncExitStack.RunAsync<int>(null!); });
        Assert.Equal(0, stack.Count);
    }

    private sealed class CallbackDisposable(Action onDispose) : IDisposable
    {
        public void Dispose() => onDispose();
    }

    private sealed class CallbackAsyncDisposable(Action onDispose) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Task.Yield();
            onDispose();
        }
    }
}
