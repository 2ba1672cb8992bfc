/// The demo origin's other seed APIs, answered from data derived from the ids asked for, so that every
/// instance answers the same thing and nothing needs storing:
///
/// - a Django REST product catalog (trailing slashes, as DRF routes them): categories, colors, products,
///   variants, recommendations, top sellers, new arrivals, filters, personalized recommendations, and its
///   writes;
/// - a Flask property API: areas, property types, valuations, and its admin writes;
/// - the rest of the FastAPI per-user stats API: deal deletion and bulk actions.
enum DemoCatalog {
    static let productCount = 500
    static let categories = ["shoes", "shirts", "trousers", "jackets", "bags", "hats", "watches", "belts", "socks",
                             "scarves", "gloves", "sunglasses"]
    static let areas = ["Marina", "Downtown", "JLT", "Palm Jumeirah", "Business Bay", "Al Barsha", "JVC", "Deira"]
    static let types = ["apartment", "villa", "townhouse", "penthouse", "studio"]

    /// The answer (status and JSON object), or nil when the request is none of these APIs'.
    static func answer(method: String, segments: [String], query: [String: String], user: String?) -> (Int, Any)? {
        let read = method == "GET" || method == "HEAD"
        let write = ["POST", "PUT", "PATCH", "DELETE"].contains(method)
        switch segments.first == "api" ? Array(segments.dropFirst()) : [] {
        // Django catalog.
        case ["categories"] where read:
            return (200, categories.enumerated().map { category(id: $0.offset + 1, name: $0.element) })
        case let path where path.count == 2 && path[0] == "categories" && read:
            guard let id = Int(path[1]), (1...categories.count).contains(id) else { return (404, ["detail": "Not found."]) }
            return (200, category(id: id, name: categories[id - 1]))
        case let path where path.first == "categories" && write:
            return (method == "DELETE" ? 204 : 200, ["ok": true])
        case ["colors"] where read:
            return (200, ["black", "white", "red", "navy", "olive", "sand"].enumerated().map { ["id": $0.offset + 1, "name": $0.element] })
        case let path where path.first == "colors" && write:
            return (method == "DELETE" ? 204 : 200, ["ok": true])
        case ["products"] where read:
            let page = max(1, Int(query["page"] ?? "") ?? 1)
            let category = Int(query["category"] ?? "")
            let ids = (1...productCount).filter { category == nil || $0 % categories.count + 1 == category }
            let slice = ids.dropFirst((page - 1) * 20).prefix(20)
            return (200, ["count": ids.count, "page": page, "results": slice.map { product($0, detailed: false) }])
        case ["products"] where method == "POST":
            return (201, product(productCount + 1, detailed: true))
        case ["products", "top_sellers"] where read:
            return (200, stride(from: 7, through: 70, by: 7).map { product($0, detailed: false) })
        case ["products", "new_arrivals"] where read:
            return (200, (productCount - 9...productCount).reversed().map { product($0, detailed: false) })
        case ["products", "filters"] where read:
            return (200, ["brands": ["Acme", "Globex", "Initech", "Umbrella"], "sizes": ["S", "M", "L", "XL"],
                          "price": ["min": 20, "max": 900], "category": query["category"] ?? "all"])
        case ["products", "personalized"] where read:
            guard let user else { return (401, ["detail": "Authentication credentials were not provided."]) }
            let seed = abs(user.hashValue % productCount)
            return (200, ["for": String(user.suffix(6)), "results": (0..<8).map { product((seed + $0 * 31) % productCount + 1, detailed: false) }])
        case let path where path.count == 2 && path[0] == "products":
            guard let id = Int(path[1]), (1...productCount).contains(id) else { return (404, ["detail": "Not found."]) }
            if read { return (200, product(id, detailed: true)) }
            if write { return (method == "DELETE" ? 204 : 200, product(id, detailed: true)) }
            return nil
        case let path where path.count == 3 && path[0] == "products" && path[2] == "variants" && read:
            guard let id = Int(path[1]), (1...productCount).contains(id) else { return (404, ["detail": "Not found."]) }
            return (200, variants(product: id))
        case let path where path.count == 3 && path[0] == "products" && path[2] == "recommendations" && read:
            guard let id = Int(path[1]), (1...productCount).contains(id) else { return (404, ["detail": "Not found."]) }
            return (200, (1...6).map { product((id + $0 * 13) % productCount + 1, detailed: false) })
        case ["variants"] where read:
            guard let id = Int(query["product"] ?? ""), (1...productCount).contains(id) else { return (200, []) }
            return (200, variants(product: id))
        case let path where path.first == "variants" && write:
            return (200, ["ok": true, "stock": 41])

        // Flask property API.
        case let path where path.count == 2 && path[0] == "areas" && read:
            return (200, ["kind": path[1], "areas": areas.enumerated().map { ["id": $0.offset + 1, "name": $0.element,
                "listings": ($0.offset + 3) * 117, "median_price": 950_000 + $0.offset * 210_000] }])
        case ["property-types"] where read:
            return (200, types.enumerated().map { ["id": $0.offset + 1, "name": $0.element] })
        case ["property", "valuation"] where read:
            guard let area = query["area"], let index = areas.firstIndex(of: area) else {
                return (404, ["error": "unknown area; known: \(areas.joined(separator: ", "))"])
            }
            let bedrooms = Int(query["bedrooms"] ?? "") ?? 2
            let type = types.firstIndex(of: query["type"] ?? "apartment") ?? 0
            return (200, ["area": area, "bedrooms": bedrooms, "type": types[type],
                          "estimate": 800_000 + index * 150_000 + bedrooms * 320_000 + type * 90_000, "confidence": 0.82])
        case let path where path.first == "admin" && write:
            return (200, ["ok": true])

        // FastAPI stats API (reads are in DemoOriginHandler).
        case let path where path.count == 4 && Array(path.prefix(3)) == ["v1", "products", "deals"] && method == "DELETE":
            guard user != nil else { return (401, ["detail": "Not authenticated"]) }
            return (204, [:] as [String: Any])
        case ["v1", "products", "bulk-action"] where method == "POST":
            guard user != nil else { return (401, ["detail": "Not authenticated"]) }
            return (200, ["moved": 3])
        default:
            return nil
        }
    }

    static func category(id: Int, name: String) -> [String: Any] {
        ["id": id, "name": name, "slug": name, "products": productCount / categories.count]
    }

    static func product(_ id: Int, detailed: Bool) -> [String: Any] {
        var product: [String: Any] = [
            "id": id, "name": "Product \(id)", "category": id % categories.count + 1, "price": Double(20 + (id * 37) % 880),
            "brand": ["Acme", "Globex", "Initech", "Umbrella"][id % 4], "in_stock": id % 9 != 0,
        ]
        if detailed {
            product["description"] = String(repeating: "A sturdy, well-made product for everyday use. ", count: 12)
            product["images"] = (1...4).map { "https://cdn.example.com/products/\(id)/\($0).jpg" }
            product["variants"] = variants(product: id)
        }
        return product
    }

    static func variants(product id: Int) -> [[String: Any]] {
        ["S", "M", "L", "XL"].enumerated().map { ["id": id * 10 + $0.offset, "size": $0.element, "stock": (id + $0.offset * 7) % 50] }
    }
}
