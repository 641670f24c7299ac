//! The gateway's built-in reply templates, as the simulator knows them: copied from the
//! maintainers' table of defaults (the gateway's public reply format), not imported, so a
//! change there shows up as unrecognised replies here instead of passing unnoticed.

/// The gateway's built-in reply templates: (language, key, text).
pub const DEFAULTS: &[(&str, &str, &str)] = &[
    (
        "az",
        "granted",
        "İCAZƏ VERİLDİ: kod {code} ({label}), {document}, {window}. İcazə № {permit_id}",
    ),
    (
        "az",
        "active",
        "İcazəniz artıq var: kod {code} ({label}), {document}, {window}. İcazə № {permit_id}",
    ),
    (
        "az",
        "daily_limit",
        "İcazə verilmədi: {document} bu gün kod {code} üzrə icazəsini artıq alıb (gündə {limit}). Sabah yenidən yazın.",
    ),
    (
        "az",
        "outside_hours",
        "İcazə verilmədi: kod {code} ({label}) yalnız {hours} arası verilir.",
    ),
    (
        "az",
        "code_disabled",
        "İcazə verilmədi: kod {code} ({label}) hazırda qüvvədə deyil. Kodlar: {codes}.",
    ),
    (
        "az",
        "blocked",
        "İcazə verilmədi: {document} üçün kod {code} üzrə icazə verilə bilməz.",
    ),
    (
        "az",
        "invalid",
        "Mesaj tanınmadı. Yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {codes}.",
    ),
    (
        "az",
        "empty",
        "Boş mesaj. Yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {codes}.",
    ),
    (
        "az",
        "no_code",
        "Mesaj icazə kodu ilə başlamalıdır ({codes}), məs. {example}.",
    ),
    (
        "az",
        "unknown_code",
        "Kod {code} yoxdur. Kodlar: {codes}. Məs. {example}.",
    ),
    (
        "az",
        "no_document",
        "Kodu sənədin seriyası və nömrəsi izləməlidir, məs. {example}.",
    ),
    (
        "az",
        "unknown_series",
        "Seriya {series} tanınmadı. Seriyalar: {series_list}. Məs. {example}.",
    ),
    (
        "az",
        "no_number",
        "Seriya {series} sonra sənədin nömrəsini yazın, məs. {example}.",
    ),
    (
        "az",
        "wrong_digit_count",
        "{series} nömrəsi {expected} rəqəmdir, siz {got} yazmısınız. Məs. {example}.",
    ),
    (
        "az",
        "try_later",
        "Sorğunuzu indi emal etmək mümkün olmadı. Bir neçə dəqiqədən sonra yenidən göndərin.",
    ),
    (
        "az",
        "revoked",
        "{document} üçün kod {code} ({label}) üzrə icazəniz ləğv edilib. Onunla çölə çıxmayın.",
    ),
    (
        "en",
        "granted",
        "PERMIT GRANTED: code {code} ({label}), {document}, {window}. Permit no. {permit_id}",
    ),
    (
        "en",
        "active",
        "You already have a permit: code {code} ({label}), {document}, {window}. Permit no. {permit_id}",
    ),
    (
        "en",
        "daily_limit",
        "Refused: {document} already had today's permit for code {code} ({limit} a day). Try again tomorrow.",
    ),
    (
        "en",
        "outside_hours",
        "Refused: code {code} ({label}) is only granted {hours}.",
    ),
    (
        "en",
        "code_disabled",
        "Refused: code {code} ({label}) is not in force now. Codes: {codes}.",
    ),
    (
        "en",
        "blocked",
        "Refused: no permit with code {code} can be issued for {document}.",
    ),
    (
        "en",
        "invalid",
        "Message not understood. Send: CODE SERIES NUMBER, e.g. {example}. Codes: {codes}.",
    ),
    (
        "en",
        "empty",
        "Empty message. Send: CODE SERIES NUMBER, e.g. {example}. Codes: {codes}.",
    ),
    (
        "en",
        "no_code",
        "Start with a permit code ({codes}), e.g. {example}.",
    ),
    (
        "en",
        "unknown_code",
        "There is no code {code}. Codes: {codes}. E.g. {example}.",
    ),
    (
        "en",
        "no_document",
        "After the code, send the document series and number, e.g. {example}.",
    ),
    (
        "en",
        "unknown_series",
        "Unknown series {series}. Series: {series_list}. E.g. {example}.",
    ),
    (
        "en",
        "no_number",
        "After {series}, send the document number, e.g. {example}.",
    ),
    (
        "en",
        "wrong_digit_count",
        "A {series} number has {expected} digits; you sent {got}. E.g. {example}.",
    ),
    (
        "en",
        "try_later",
        "We could not process your request now. Please send it again in a few minutes.",
    ),
    (
        "en",
        "revoked",
        "Your permit with code {code} ({label}) for {document} has been revoked. Do not go out on it.",
    ),
    (
        "ru",
        "granted",
        "РАЗРЕШЕНИЕ ВЫДАНО: код {code} ({label}), {document}, {window}. Разрешение № {permit_id}",
    ),
    (
        "ru",
        "active",
        "У вас уже есть разрешение: код {code} ({label}), {document}, {window}. Разрешение № {permit_id}",
    ),
    (
        "ru",
        "daily_limit",
        "Отказано: {document} уже получил сегодня разрешение по коду {code} ({limit} в день). Попробуйте завтра.",
    ),
    (
        "ru",
        "outside_hours",
        "Отказано: код {code} ({label}) выдаётся только {hours}.",
    ),
    (
        "ru",
        "code_disabled",
        "Отказано: код {code} ({label}) сейчас не действует. Коды: {codes}.",
    ),
    (
        "ru",
        "blocked",
        "Отказано: разрешение по коду {code} для {document} выдано быть не может.",
    ),
    (
        "ru",
        "invalid",
        "Сообщение не распознано. Отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {codes}.",
    ),
    (
        "ru",
        "empty",
        "Пустое сообщение. Отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {codes}.",
    ),
    (
        "ru",
        "no_code",
        "Начните с кода разрешения ({codes}), напр. {example}.",
    ),
    (
        "ru",
        "unknown_code",
        "Кода {code} нет. Коды: {codes}. Напр. {example}.",
    ),
    (
        "ru",
        "no_document",
        "После кода укажите серию и номер документа, напр. {example}.",
    ),
    (
        "ru",
        "unknown_series",
        "Серия {series} не распознана. Серии: {series_list}. Напр. {example}.",
    ),
    (
        "ru",
        "no_number",
        "После {series} укажите номер документа, напр. {example}.",
    ),
    (
        "ru",
        "wrong_digit_count",
        "Номер {series} состоит из {expected} цифр, вы отправили {got}. Напр. {example}.",
    ),
    (
        "ru",
        "try_later",
        "Сейчас не удалось обработать запрос. Отправьте его снова через несколько минут.",
    ),
    (
        "ru",
        "revoked",
        "Ваше разрешение с кодом {code} ({label}) для {document} аннулировано. Не выходите по нему.",
    ),
    (
        "az",
        "two_codes",
        "Bir mesajda bir kod yazın: siz {code} və {other_code} göndərmisiniz. Məs. {example}.",
    ),
    (
        "az",
        "ambiguous_number",
        "Nömrə {series} və ya {other_series} üçündür? Seriyanı nömrədən əvvəl yazın, məs. {example}.",
    ),
    (
        "az",
        "too_many_documents",
        "Bir mesajda ən çoxu {max} sənəd yazın, siz {got} yazmısınız. Qalanlarını ayrıca göndərin.",
    ),
    (
        "az",
        "help",
        "İcazə üçün yazın: KOD SERİYA NÖMRƏ, məs. {example}. Kodlar: {code_labels}.",
    ),
    ("az", "family", "Kod {code} ({label}), {got} sənəd:"),
    (
        "az",
        "family_granted",
        "{document}: VERİLDİ {window}, № {permit_id}",
    ),
    (
        "az",
        "family_active",
        "{document}: artıq var {window}, № {permit_id}",
    ),
    (
        "az",
        "family_daily_limit",
        "{document}: verilmədi, bu gün artıq alıb (gündə {limit})",
    ),
    ("az", "family_revoked", "{document}: icazə ləğv edilib"),
    ("az", "family_refused", "{document}: verilmədi"),
    (
        "en",
        "two_codes",
        "Send one code per message; you sent {code} and {other_code}. E.g. {example}.",
    ),
    (
        "en",
        "ambiguous_number",
        "Is the number for {series} or for {other_series}? Write the series before its number, e.g. {example}.",
    ),
    (
        "en",
        "too_many_documents",
        "At most {max} documents per message; you sent {got}. Send the rest in another message.",
    ),
    (
        "en",
        "help",
        "For a permit send: CODE SERIES NUMBER, e.g. {example}. Codes: {code_labels}.",
    ),
    ("en", "family", "Code {code} ({label}), {got} documents:"),
    (
        "en",
        "family_granted",
        "{document}: GRANTED {window}, no. {permit_id}",
    ),
    (
        "en",
        "family_active",
        "{document}: already granted {window}, no. {permit_id}",
    ),
    (
        "en",
        "family_daily_limit",
        "{document}: refused, today's permit already used ({limit} a day)",
    ),
    ("en", "family_revoked", "{document}: permit revoked"),
    ("en", "family_refused", "{document}: refused"),
    (
        "ru",
        "two_codes",
        "Укажите один код: вы отправили {code} и {other_code}. Напр. {example}.",
    ),
    (
        "ru",
        "ambiguous_number",
        "Номер относится к {series} или к {other_series}? Укажите серию перед номером, напр. {example}.",
    ),
    (
        "ru",
        "too_many_documents",
        "Не более {max} документов в одном сообщении, вы отправили {got}. Остальные отправьте отдельно.",
    ),
    (
        "ru",
        "help",
        "Для разрешения отправьте: КОД СЕРИЯ НОМЕР, напр. {example}. Коды: {code_labels}.",
    ),
    ("ru", "family", "Код {code} ({label}), документов: {got}:"),
    (
        "ru",
        "family_granted",
        "{document}: РАЗРЕШЕНО {window}, № {permit_id}",
    ),
    (
        "ru",
        "family_active",
        "{document}: уже выдано {window}, № {permit_id}",
    ),
    (
        "ru",
        "family_daily_limit",
        "{document}: отказ, сегодня уже выдано ({limit} в день)",
    ),
    (
        "ru",
        "family_revoked",
        "{document}: разрешение аннулировано",
    ),
    ("ru", "family_refused", "{document}: отказ"),
    (
        "az",
        "abuse",
        "İcazə verilmədi: {document} üçün kod {code} üzrə sorğular həddi aşıb (sui-istifadə). İcazə qəbul edilmir.",
    ),
    (
        "en",
        "abuse",
        "Refused: too many requests (abuse limit) for code {code}, {document}. The permit is not accepted.",
    ),
    (
        "ru",
        "abuse",
        "Отказ: превышен предел запросов (злоупотребление) по коду {code}, {document}. Разрешение не принято.",
    ),
    (
        "az",
        "family_abuse",
        "{document}: verilmədi, sorğu həddi aşılıb",
    ),
    ("en", "family_abuse", "{document}: refused, abuse limit"),
    ("ru", "family_abuse", "{document}: отказ, предел запросов"),
    ("az", "status", "{document}, bu gün bu nömrədən:"),
    ("en", "status", "{document}, today from this phone:"),
    ("ru", "status", "{document}, сегодня с этого номера:"),
    ("az", "status_line", "kod {code} {window}, № {permit_id}"),
    ("en", "status_line", "code {code} {window}, no. {permit_id}"),
    ("ru", "status_line", "код {code} {window}, № {permit_id}"),
    (
        "az",
        "status_none",
        "{document}: bu gün bu nömrədən icazə yoxdur.",
    ),
    (
        "en",
        "status_none",
        "{document}: no permits today from this phone.",
    ),
    (
        "ru",
        "status_none",
        "{document}: сегодня с этого номера разрешений нет.",
    ),
];
