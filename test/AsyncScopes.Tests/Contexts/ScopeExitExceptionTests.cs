namespace AsyncScopes.Tests.Contexts;

public sealed class ScopeExitExceptionTests
{
    [Fact]
    public void Holds_the_exceptions_in_the_order_given()
    {
        var first = new FormatException("first");
        var second = new IOException("second");

        var combined = new ScopeExitException([first, second]);

        Assert.Equal<Exception>([first, second], combined.InnerExceptions);
    }

    [Fact]
    public void An_empty_list_is_rejected_with_ArgumentException()
    {
        var thrown = Assert.Throws<ArgumentException>(() => new ScopeExitException([]));

        Assert.Equal("innerExceptions", thrown.ParamName);
    }

    [Fact]
    public void A_null_list_is_rejected_with_ArgumentNullException()
    {
        var thrown = Assert.Throws<ArgumentNullException>(() => new ScopeExitException(null!));

        Assert.Equal("innerExceptions", thrown.ParamName);
    }

    [Fact]
    public void A_null_item_is_rejected_with_ArgumentNullException()
    {
        var thrown = Assert.Throws<ArgumentNullException>(() => new ScopeExitException([new FormatException("first"), null!]));

        Assert.Equal("innerExceptions", thrown.ParamName);
    }

    [Fact]
    public void A_sequence_that_can_be_read_only_once_is_read_once()
    {
        var only = new FormatException("only");

        var combined = new ScopeExitException(Once(only));

        Assert.Same(only, Assert.Single(combined.InnerExceptions));

        static IEnumerable<Exception> Once(Exception exception)
        {
            var read = false;
            return Read();

            IEnumerable<Exception> Read()
            {
                Assert.False(read, "The sequence was read twice.");
                read = true;
                yield return exception;
            }
        }
    }

    // An exit that rethrows the failures it saw, combined with more of its own (a nested scope does), does not list them
    // twice; one that throws anything else adds all of it after them.
    [Fact]
    public async Task An_exit_that_throws_a_combination_starting_with_the_failure_it_saw_replaces_it()
    {
        var body = new FormatException("the body failed");
        var own = new IOException("the exit's own failure");

        var thrown = await ExitAfterAsync(body, seen => new ScopeExitException([seen!, own]));

        Assert.Equal<Exception>([body, own], Assert.IsType<ScopeExitException>(thrown).InnerExceptions);
    }

    [Fact]
    public async Task An_exit_that_throws_a_combination_extending_the_combination_it_saw_replaces_it()
    {
        var body = new FormatException("the body failed");
        var first = new InvalidOperationException("the first exit failed");
        var own = new IOException("the second exit's own failure");

        var thrown = await ExitAfterAsync(body, seen => new ScopeExitException([.. ((ScopeExitException)seen!).InnerExceptions, own]), first);
        var copy = await ExitAfterAsync(body, seen => new ScopeExitException(((ScopeExitException)seen!).InnerExceptions), first);

        Assert.Equal<Exception>([body, first, own], Assert.IsType<ScopeExitException>(thrown).InnerExceptions);
        Assert.Equal<Exception>([body, first], Assert.IsType<ScopeExitException>(copy).InnerExceptions);
    }

    [Fact]
    public async Task An_exit_that_throws_a_combination_differing_from_the_one_it_saw_is_added_after_it()
    {
        var body = new FormatException("the body failed");
        var first = new InvalidOperationException("the first exit failed");
        var other = new IOException("another failure");

        var differs = await ExitAfterAsync(body, _ => new ScopeExitException([body, other]), first);
        var shorter = await ExitAfterAsync(body, _ => new ScopeExitException([body]), first);
        var unrelated = await ExitAfterAsync(body, _ => new ScopeExitException([other, body]));

        Assert.Equal<Exception>([body, first, body, other], Assert.IsType<ScopeExitException>(differs).InnerExceptions);
        Assert.Equal<Exception>([body, first, body], Assert.IsType<ScopeExitException>(shorter).InnerExceptions);
        Assert.Equal<Exception>([body, other, body], Assert.IsType<ScopeExitException>(unrelated).InnerExceptions);
    }

    // A stack whose body throws bodyFailure; its exits run last registered first: the one that fails with firstExitFailure
    // (when given), then the one that throws what exitError makes of the failure it saw.
    private static async Task<Exception> ExitAfterAsync(Exception bodyFailure, Func<Exception?, Exception> exitError, Exception? firstExitFailure = null)
    {
        var stack = new AsyncExitStack();
        stack.PushExit(seen => throw exitError(seen));
        if (firstExitFailure is not null)
        {
            stack.PushExit(_ => throw firstExitFailure);
        }

        return await Assert.ThrowsAnyAsync<Exception>(async () => await stack.ExitAsync(bodyFailure));
    }
}
