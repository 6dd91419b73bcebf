using System.Net;
using System.Net.Http.Headers;
using Chat.Webhooks;

namespace Chat.Tests.Webhooks;

public sealed class DeliveryRetryPolicyTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(HttpStatusCode.RequestTimeout, true)]
    [InlineData(HttpStatusCode.TooManyRequests, true)]
    [InlineData(HttpStatusCode.InternalServerError, true)]
    [InlineData(HttpStatusCode.BadGateway, true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, true)]
    [InlineData(HttpStatusCode.MovedPermanently, false)]
    [InlineData(HttpStatusCode.TemporaryRedirect, false)]
    [InlineData(HttpStatusCode.BadRequest, false)]
    [InlineData(HttpStatusCode.Unauthorized, false)]
    [InlineData(HttpStatusCode.NotFound, false)]
    [InlineData(HttpStatusCode.Gone, false)]
    public void Only_408_429_and_5xx_answers_are_tried_again(HttpStatusCode status, bool retried) =>
        Assert.Equal(retried, DeliveryRetryPolicy.IsRetried(new WebhookStatusException(status, null)));

    [Fact]
    public void Network_failures_and_missed_deadlines_are_tried_again_and_refused_destinations_are_not()
    {
        Assert.True(DeliveryRetryPolicy.IsRetried(new HttpRequestException(HttpRequestError.ConnectionError, "refused")));
        Assert.True(DeliveryRetryPolicy.IsRetried(new TimeoutException()));
        Assert.False(DeliveryRetryPolicy.IsRetried(new WebhookRefusedException("internal")));
        Assert.False(DeliveryRetryPolicy.IsRetried(
            new HttpRequestException(HttpRequestError.ConnectionError, "refused", new WebhookRefusedException("internal"))));
    }

    [Fact]
    public void The_backoff_doubles_up_to_its_maximum()
    {
        var backoffBase = TimeSpan.FromSeconds(1);
        var max = TimeSpan.FromSeconds(30);
        Assert.Equal(
            [1, 2, 4, 8, 16, 30, 30],
            Enumerable.Range(1, 7).Select(failed => DeliveryRetryPolicy.Backoff(failed, backoffBase, max).TotalSeconds));
        Assert.Equal(TimeSpan.FromDays(1), DeliveryRetryPolicy.Backoff(1_000, TimeSpan.FromHours(1), TimeSpan.FromDays(1)));
    }

    [Theory]
    [InlineData(0.0, 8.0)]
    [InlineData(0.5, 7.0)]
    [InlineData(1.0, 6.0)]
    public void Jitter_takes_off_at_most_its_part_of_the_backoff(double sample, double seconds)
    {
        var options = new WebhookOptions { BackoffBase = TimeSpan.FromSeconds(1), BackoffJitter = 0.25 };
        Assert.Equal(
            TimeSpan.FromSeconds(seconds),
            DeliveryRetryPolicy.NextWait(4, new WebhookStatusException(HttpStatusCode.BadGateway, null), options, sample));
    }

    [Fact]
    public void Retry_After_lengthens_the_wait_up_to_the_maximum_and_never_shortens_it()
    {
        var options = new WebhookOptions
        {
            BackoffBase = TimeSpan.FromSeconds(10),
            BackoffMax = TimeSpan.FromMinutes(2),
            BackoffJitter = 0,
        };

        Assert.Equal(TimeSpan.FromSeconds(90), NextWait(TimeSpan.FromSeconds(90)));
        Assert.Equal(TimeSpan.FromSeconds(10), NextWait(TimeSpan.FromSeconds(3)));
        Assert.Equal(TimeSpan.FromMinutes(2), NextWait(TimeSpan.FromHours(1)));

        TimeSpan NextWait(TimeSpan retryAfter) =>
            DeliveryRetryPolicy.NextWait(1, new WebhookStatusException(HttpStatusCode.TooManyRequests, retryAfter), options, 0.7);
    }

    [Fact]
    public void Retry_After_is_read_as_a_delay_or_a_date_and_ignored_in_the_past()
    {
        Assert.Equal(TimeSpan.FromSeconds(120), DeliveryRetryPolicy.RetryAfter(new RetryConditionHeaderValue(TimeSpan.FromSeconds(120)), Now));
        Assert.Equal(TimeSpan.FromMinutes(5), DeliveryRetryPolicy.RetryAfter(new RetryConditionHeaderValue(Now.AddMinutes(5)), Now));
        Assert.Null(DeliveryRetryPolicy.RetryAfter(new RetryConditionHeaderValue(Now.AddMinutes(-5)), Now));
        Assert.Null(DeliveryRetryPolicy.RetryAfter(null, Now));
    }
}
