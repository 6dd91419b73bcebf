using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;
using Microsoft.CodeAnalysis.Simplification;
using static Microsoft.CodeAnalysis.CSharp.SyntaxFactory;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0004's fix: the type implements <c>IAsyncDisposable</c> too, with a <c>DisposeAsync</c> that awaits each
/// async-disposable field's <c>DisposeAsync</c>, then calls <c>Dispose()</c> for the rest of the cleanup (disposing
/// those fields again does nothing, as <c>IDisposable</c> requires).
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0004AsyncDisposableFieldsInSyncDisposableFix))]
[Shared]
public sealed class ASC0004AsyncDisposableFieldsInSyncDisposableFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.AsyncDisposableFieldsInSyncDisposable);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            if (root.FindToken(diagnostic.Location.SourceSpan.Start).Parent is not TypeDeclarationSyntax type
                || !diagnostic.Properties.TryGetValue(ASC0004AsyncDisposableFieldsInSyncDisposable.FieldsProperty, out var fields)
                || string.IsNullOrEmpty(fields)
                || model.GetDeclaredSymbol(type, context.CancellationToken) is not { } symbol)
            {
                continue;
            }

            var configureAwait = FixSyntax.UsesConfigureAwait(root);
            var statements = new List<StatementSyntax>();
            foreach (var name in fields!.Split(','))
            {
                var member = symbol.GetMembers(name).FirstOrDefault();
                var memberType = member switch
                {
                    IFieldSymbol field => field.Type,
                    IPropertySymbol property => property.Type,
                    _ => null,
                };
                var disposal = ExpressionStatement(FixSyntax.Await(
                    InvocationExpression(MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, IdentifierName(name), IdentifierName("DisposeAsync"))),
                    configureAwait));
                statements.Add(memberType is { IsReferenceType: true, NullableAnnotation: NullableAnnotation.Annotated }
                    ? IfStatement(ParseExpression(name + " is not null"), Block(disposal))
                    : disposal);
            }

            statements.Add(ExpressionStatement(InvocationExpression(IdentifierName("Dispose"))));
            var method = MethodDeclaration(ParseTypeName("System.Threading.Tasks.ValueTask").WithAdditionalAnnotations(Simplifier.Annotation), "DisposeAsync")
                .WithModifiers(TokenList(Token(SyntaxKind.PublicKeyword), Token(SyntaxKind.AsyncKeyword)))
                .WithBody(Block(statements))
                .WithAdditionalAnnotations(Formatter.Annotation);

            var lastDispose = type.Members.OfType<MethodDeclarationSyntax>().LastOrDefault(candidate => candidate.Identifier.ValueText == "Dispose");
            var members = lastDispose is null ? type.Members.Add(method) : type.Members.Insert(type.Members.IndexOf(lastDispose) + 1, method);
            var asyncDisposable = SimpleBaseType(ParseTypeName("System.IAsyncDisposable").WithAdditionalAnnotations(Simplifier.Annotation));
            TypeDeclarationSyntax updated = type.WithMembers(members);
            updated = updated.BaseList is null
                ? updated.WithIdentifier(updated.Identifier.WithTrailingTrivia()).WithBaseList(BaseList(SingletonSeparatedList<BaseTypeSyntax>(asyncDisposable)).WithTrailingTrivia(updated.Identifier.TrailingTrivia))
                : updated.WithBaseList(updated.BaseList.AddTypes(asyncDisposable));

            var replaced = root.ReplaceNode(type, updated.WithAdditionalAnnotations(Formatter.Annotation));
            context.RegisterCodeFix(
                CodeAction.Create("Implement IAsyncDisposable", _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0004AsyncDisposableFieldsInSyncDisposableFix)),
                diagnostic);
        }
    }
}
