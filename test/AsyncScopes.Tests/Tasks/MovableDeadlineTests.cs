using Microsoft.Extensions.Time.Testing;

namespace AsyncScopes.Tests.Tasks;

/// <summary><see cref="MovableDeadline"/>: a deadline moved earlier, later, into the past, and after it fired.</summary>
public sealed class MovableDeadlineTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public void It_fires_when_its_time_comes_and_not_before()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(10 * Second, timeProvider: time);

        time.Advance(10 * Second - TimeSpan.FromTicks(1));
        Assert.False(deadline.Token.IsCancellationRequested);

        time.Advance(TimeSpan.FromTicks(1));
        Assert.True(deadline.Token.IsCancellationRequested);
        Assert.True(deadline.Expired);
    }

    [Fact]
    public void Extended_by_every_frame_it_fires_only_after_the_silence()
    {
        var time = new FakeTimeProvider();
        using var idle = MovableDeadline.After(10 * Second, timeProvider: time);

        for (var frame = 0; frame < 5; frame++)
        {
            time.Advance(8 * Second);
            Assert.True(idle.Reschedule(time.GetUtcNow() + 10 * Second)); // a frame arrived: ten more seconds
        }

        time.Advance(9 * Second);
        Assert.False(idle.Token.IsCancellationRequested);
        time.Advance(Second);
        Assert.True(idle.Expired);
    }

    [Fact]
    public void Moved_earlier_it_fires_earlier()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(10 * Second, timeProvider: time);

        Assert.True(deadline.Extend(-7 * Second));
        time.Advance(3 * Second);

        Assert.True(deadline.Expired);
        Assert.Equal(time.GetUtcNow(), deadline.When);
    }

    [Fact]
    public void Moved_later_then_back_it_fires_at_the_last_time_it_was_given()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(10 * Second, timeProvider: time);
        var start = time.GetUtcNow();

        Assert.True(deadline.Reschedule(start + 30 * Second));
        Assert.True(deadline.Reschedule(start + 20 * Second));
        time.Advance(20 * Second - TimeSpan.FromTicks(1));
        Assert.False(deadline.Token.IsCancellationRequested);
        time.Advance(TimeSpan.FromTicks(1));

        Assert.True(deadline.Expired);
        Assert.Equal(start + 20 * Second, deadline.When);
    }

    [Fact]
    public void Moved_into_the_past_it_fires_at_once()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(10 * Second, timeProvider: time);

        Assert.True(deadline.Reschedule(time.GetUtcNow() - Second));

        Assert.True(deadline.Token.IsCancellationRequested);
        Assert.True(deadline.Expired);
    }

    [Fact]
    public void After_it_fired_it_does_not_move()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(Second, timeProvider: time);
        time.Advance(Second);
        var fired = deadline.When;

        Assert.False(deadline.Reschedule(time.GetUtcNow() + 10 * Second));
        Assert.False(deadline.Extend(Second));
        Assert.Equal(fired, deadline.When);
    }

    [Fact]
    public void The_outer_token_cancels_it_without_it_expiring()
    {
        var time = new FakeTimeProvider();
        using var outer = new CancellationTokenSource();
        using var deadline = MovableDeadline.At(time.GetUtcNow() + 10 * Second, outer.Token, time);

        outer.Cancel();

        Assert.True(deadline.Token.IsCancellationRequested);
        Assert.False(deadline.Expired);
        Assert.False(deadline.Extend(Second));
    }

    [Fact]
    public void Disposed_it_never_fires()
    {
        var time = new FakeTimeProvider();
        var deadline = MovableDeadline.After(Second, timeProvider: time);

        deadline.Dispose();
        time.Advance(10 * Second);

        Assert.False(deadline.Token.IsCancellationRequested);
        Assert.False(deadline.Reschedule(time.GetUtcNow()));
    }

    [Fact]
    public void A_deadline_farther_than_a_timer_waits_still_fires_on_time()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(TimeSpan.FromDays(100), timeProvider: time);

        time.Advance(TimeSpan.FromDays(60));
        Assert.False(deadline.Token.IsCancellationRequested);
        time.Advance(TimeSpan.FromDays(40));

        Assert.True(deadline.Expired);
    }

    [Fact]
    public void A_callback_that_throws_when_it_fires_is_reported_as_unobserved()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(Second, timeProvider: time);
        var failure = new InvalidOperationException("callback");
        deadline.Token.Register(() => throw failure);
        var reported = new List<Exception>();
        EventHandler<UnobservedScopeFailureEventArgs> handler = (_, e) =>
        {
            if (e.ScopeName == "MovableDeadline")
            {
                lock (reported)
                {
                    reported.Add(e.Exception);
                }
            }
        };
        ScopeDiagnostics.UnobservedFailure += handler;
        try
        {
            time.Advance(Second);
        }
        finally
        {
            ScopeDiagnostics.UnobservedFailure -= handler;
        }

        Assert.Contains(failure, reported);
    }

    [Fact]
    public void Its_callbacks_run_outside_its_lock_when_a_move_fires_it()
    {
        var time = new FakeTimeProvider();
        using var deadline = MovableDeadline.After(10 * Second, timeProvider: time);
        var readElsewhere = false;
        deadline.Token.Register(() => readElsewhere = Task.Run(() => deadline.When).Wait(TimeSpan.FromSeconds(30)));

        deadline.Reschedule(time.GetUtcNow() - Second);

        Assert.True(readElsewhere);
    }

    [Fact]
    public void Moving_it_allocates_nothing()
    {
        using var deadline = MovableDeadline.After(TimeSpan.FromHours(1));
        var when = deadline.When;
        deadline.Extend(Second); // the first call may prepare what the timer needs

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            deadline.Reschedule(when + TimeSpan.FromMilliseconds(i));
            deadline.Extend(Second);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_negative_delay_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MovableDeadline.After(-Second));
    }

    // --- Deadline.RunMovableAsync: a deadline the work moves --------------------------------------------------------

    [Fact]
    public async Task An_idle_timeout_pushed_forward_by_every_frame_ends_the_work_after_the_silence()
    {
        var time = new FakeTimeProvider();
        var frames = System.Threading.Channels.Channel.CreateUnbounded<int>();
        var handled = System.Threading.Channels.Channel.CreateUnbounded<int>();
        var received = 0;
        var receiving = Deadline.RunMovableAsync(
            10 * Second,
            async (idle, token) =>
            {
                await foreach (var frame in frames.Reader.ReadAllAsync(token))
                {
                    received++;
                    idle.Reschedule(time.GetUtcNow() + 10 * Second);
                    handled.Writer.TryWrite(frame);
                }
            },
            timeProvider: time);

        for (var frame = 0; frame < 3; frame++)
        {
            time.Advance(8 * Second);
            await frames.Writer.WriteAsync(frame);
            Assert.Equal(frame, await handled.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        Assert.False(receiving.IsCompleted);
        time.Advance(10 * Second);

        var timeout = await Assert.ThrowsAsync<TimeoutException>(() => receiving.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.IsAssignableFrom<OperationCanceledException>(timeout.InnerException);
        Assert.Equal(3, received);
    }

    [Fact]
    public async Task The_outer_token_ends_the_work_as_a_cancellation_not_a_timeout()
    {
        var time = new FakeTimeProvider();
        using var outer = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var work = Deadline.RunMovableAsync(
            10 * Second,
            async (_, token) =>
            {
                started.SetResult();
                await Task.Delay(Timeout.Infinite, token);
            },
            outer.Token,
            time);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        outer.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => work.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task The_result_of_work_that_finished_is_returned()
    {
        var result = await Deadline.RunMovableAsync(Timeout.InfiniteTimeSpan, (deadline, _) =>
        {
            Assert.True(deadline.Reschedule(deadline.TimeProvider.GetUtcNow() + TimeSpan.FromHours(1))); // no deadline yet: setting one is allowed
            return Task.FromResult(42);
        }).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(42, result);
    }
}
