internal import Hummingbird
internal import NIOCore
internal import NIOHTTP1
internal import NIOHTTPTypes
internal import VigilEngine

/// Answers a request that the HTTP/1 parser rejects (a malformed request line, header, path or
/// chunk size) with 400, `{"error": "..."}` naming the rule and `Connection: close`, then closes
/// the connection. Without it Hummingbird answers such requests with an empty 400
/// (HTTPChannelHandler catches `HTTPParserError`). Installed in each connection's pipeline
/// after the HTTP codec (`HTTP1Channel.Configuration.additionalChannelHandlers`).
final class HTTPParserErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A response head was written and its end not yet: a response is in flight.
    private var responding = false
    /// This handler answered; later writes of the route's response are dropped.
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if answered {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head: responding = true
        case .end: responding = false
        case .body: break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !responding, !answered else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        let body = ByteBuffer(string: "{\"error\":\(JSON.string(Self.message(parserError)))}\n")
        var head = HTTPResponse(status: .badRequest)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.readableBytes)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        // Hummingbird still sees the error, so that a route reading the body fails instead of
        // taking the bytes before the error as the whole body; its own answer is dropped above.
        context.fireErrorCaught(error)
    }

    /// The rule a parser error breaks, in words.
    static func message(_ e: HTTPParserError) -> String {
        let rule: String
        switch e {
        case .invalidChunkSize: rule = "a chunk size is hexadecimal digits followed by CRLF"
        case .invalidMethod: rule = "the method is a token such as GET or POST"
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort: rule = "the request target is an absolute path without spaces or control characters"
        case .invalidVersion: rule = "the request line ends with HTTP/1.1 or HTTP/1.0"
        case .headerOverflow: rule = "the header section is at most 80 KiB"
        case .invalidHeaderToken, .invalidConstant, .lfExpected, .invalidCharactersUsed, .strictModeAssertion:
            rule = "header lines are `Name: value` separated by CRLF, names are tokens"
        case .invalidContentLength, .unexpectedContentLength:
            rule = "Content-Length is one decimal number, and not given with Transfer-Encoding"
        case .invalidEOFState, .closedConnection: rule = "a body is as long as its Content-Length or its chunks"
        default: rule = "the request follows HTTP/1.1 (RFC 9112)"
        }
        return "request: malformed HTTP (\(String(describing: e))); \(rule)"
    }
}
