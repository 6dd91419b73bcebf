namespace AsyncScopes.Hosting;

/// <summary>The instance a lazy registration created, with its own copy of its options, if it has: lets a health
/// check look at it without creating it.</summary>
internal sealed class CreatedInstance<TInstance, TOptions>
    where TInstance : class
    where TOptions : class
{
    private readonly Lock _lock = new();
    private (TInstance Instance, TOptions Options)? _value;

    public (TInstance Instance, TOptions Options)? Value
    {
        get
        {
            lock (_lock)
            {
                return _value;
            }
        }
    }

    public TInstance Set(TInstance instance, TOptions options)
    {
        lock (_lock)
        {
            _value = (instance, options);
        }

        return instance;
    }
}
