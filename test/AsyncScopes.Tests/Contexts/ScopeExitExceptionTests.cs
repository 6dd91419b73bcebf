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
}
