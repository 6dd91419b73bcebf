namespace AsyncScopes;

/// <summary>
/// An async context manager: a resource or state that is entered before a block of code and exited after it,
/// with the exit told how the block ended. This is Python's <c>__aenter__</c>/<c>__aexit__</c> protocol.
/// </summary>
/// <typeparam name="T">The value the block works with (the <c>as</c> target of Python's <c>async with</c>).</typeparam>
/// <remarks>
/// Use a manager through <see cref="AsyncContext.WithAsync{T}(IAsyncContextManager{T}, Func{T, CancellationToken, Task}, CancellationToken)"/>
/// or <see cref="AsyncExitStack.EnterAsync{T}(IAsyncContextManager{T}, CancellationToken)"/>; both call
/// <see cref="ExitAsync"/> exactly once after every successful <see cref="EnterAsync"/>.
/// </remarks>
public interface IAsyncContextManager<T>
{
    /// <summary>Acquires the resource. If this throws, <see cref="ExitAsync"/> is not called.</summary>
    /// <param name="cancellationToken">Cancels the acquisition. An implementation that observes it throws
    /// <see cref="OperationCanceledException"/> and leaves nothing acquired.</param>
    /// <returns>The value the block works with.</returns>
    ValueTask<T> EnterAsync(CancellationToken cancellationToken = default);

    /// <summary>Releases the resource, seeing how the block ended.</summary>
    /// <param name="exception"><see langword="null"/> when the block completed; otherwise what it threw,
    /// <see cref="OperationCanceledException"/> included.</param>
    /// <returns><see langword="true"/> to suppress <paramref name="exception"/>; returning <see langword="true"/>
    /// when <paramref name="exception"/> is <see langword="null"/> means nothing.</returns>
    /// <remarks>No cancellation token is passed: cleanup is not cancelled by the caller's token. An exception thrown
    /// here is combined with the block's exception by the rules of <see cref="ScopeExitException"/>.</remarks>
    ValueTask<bool> ExitAsync(Exception? exception);
}
