namespace AsyncScopes.Tests.Contexts;

public sealed class ScopeAbandonedExceptionTests
{
    [Fact]
    public void A_null_message_is_the_default_message()
    {
        var cause = new FormatException("cause");
        string defaultMessage = new ScopeAbandonedException().Message;

        Assert.False(string.IsNullOrEmpty(defaultMessage));
        Assert.Equal(defaultMessage, new ScopeAbandonedException(null).Message);
        var withCause = new ScopeAbandonedException(null, cause);
        Assert.Equal(defaultMessage, withCause.Message);
        Assert.Same(cause, withCause.InnerException);
        Assert.Equal("what was abandoned", new ScopeAbandonedException("what was abandoned", cause).Message);
        Assert.Equal("what was abandoned", new ScopeAbandonedException("what was abandoned").Message);
    }
}
