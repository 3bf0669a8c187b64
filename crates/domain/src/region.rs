//! Province-level divisions and their GB/T 2260 codes.

/// A province-level division, identified by the first two digits of a GB/T 2260 region code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Province {
    /// The two-digit GB/T 2260 code (the first two digits of a citizen ID number).
    pub code: u8,
    /// The Chinese name.
    pub name_zh: &'static str,
    /// The English name.
    pub name_en: &'static str,
    /// The ISO 3166-2 subdivision code, e.g. `CN-BJ`.
    pub iso_3166_2: &'static str,
}

const fn p(
    code: u8,
    name_zh: &'static str,
    name_en: &'static str,
    iso_3166_2: &'static str,
) -> Province {
    Province {
        code,
        name_zh,
        name_en,
        iso_3166_2,
    }
}

/// All 34 province-level divisions, in code order, plus prefix 83 which residence permits of
/// Taiwan residents carry (it maps to the same ISO code as 71).
pub static PROVINCES: &[Province] = &[
    p(11, "北京市", "Beijing", "CN-BJ"),
    p(12, "天津市", "Tianjin", "CN-TJ"),
    p(13, "河北省", "Hebei", "CN-HE"),
    p(14, "山西省", "Shanxi", "CN-SX"),
    p(15, "内蒙古自治区", "Inner Mongolia", "CN-NM"),
    p(21, "辽宁省", "Liaoning", "CN-LN"),
    p(22, "吉林省", "Jilin", "CN-JL"),
    p(23, "黑龙江省", "Heilongjiang", "CN-HL"),
    p(31, "上海市", "Shanghai", "CN-SH"),
    p(32, "江苏省", "Jiangsu", "CN-JS"),
    p(33, "浙江省", "Zhejiang", "CN-ZJ"),
    p(34, "安徽省", "Anhui", "CN-AH"),
    p(35, "福建省", "Fujian", "CN-FJ"),
    p(36, "江西省", "Jiangxi", "CN-JX"),
    p(37, "山东省", "Shandong", "CN-SD"),
    p(41, "河南省", "Henan", "CN-HA"),
    p(42, "湖北省", "Hubei", "CN-HB"),
    p(43, "湖南省", "Hunan", "CN-HN"),
    p(44, "广东省", "Guangdong", "CN-GD"),
    p(45, "广西壮族自治区", "Guangxi", "CN-GX"),
    p(46, "海南省", "Hainan", "CN-HI"),
    p(50, "重庆市", "Chongqing", "CN-CQ"),
    p(51, "四川省", "Sichuan", "CN-SC"),
    p(52, "贵州省", "Guizhou", "CN-GZ"),
    p(53, "云南省", "Yunnan", "CN-YN"),
    p(54, "西藏自治区", "Tibet", "CN-XZ"),
    p(61, "陕西省", "Shaanxi", "CN-SN"),
    p(62, "甘肃省", "Gansu", "CN-GS"),
    p(63, "青海省", "Qinghai", "CN-QH"),
    p(64, "宁夏回族自治区", "Ningxia", "CN-NX"),
    p(65, "新疆维吾尔自治区", "Xinjiang", "CN-XJ"),
    p(71, "台湾省", "Taiwan", "CN-TW"),
    p(81, "香港特别行政区", "Hong Kong", "CN-HK"),
    p(82, "澳门特别行政区", "Macao", "CN-MO"),
    p(83, "台湾居民居住证", "Taiwan (residence permit)", "CN-TW"),
];

impl Province {
    /// Looks up a province by its two-digit code.
    pub fn by_code(code: u8) -> Option<&'static Province> {
        // The table is sorted by code, so a binary search keeps this cheap on hot paths.
        PROVINCES
            .binary_search_by_key(&code, |p| p.code)
            .ok()
            .and_then(|i| PROVINCES.get(i))
    }

    /// Whether this is one of the 31 mainland provinces, autonomous regions and municipalities.
    pub fn is_mainland(&self) -> bool {
        self.code < 70
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_complete() {
        assert_eq!(PROVINCES.len(), 35);
        for pair in PROVINCES.windows(2) {
            assert!(pair[0].code < pair[1].code, "table must stay sorted");
        }
        assert_eq!(PROVINCES.iter().filter(|p| p.is_mainland()).count(), 31);
        for p in PROVINCES {
            assert_eq!(Province::by_code(p.code), Some(p));
            assert!(p.iso_3166_2.starts_with("CN-") && p.iso_3166_2.len() == 5);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(Province::by_code(11).unwrap().iso_3166_2, "CN-BJ");
        assert_eq!(Province::by_code(44).unwrap().name_en, "Guangdong");
        assert_eq!(Province::by_code(54).unwrap().iso_3166_2, "CN-XZ");
        assert_eq!(Province::by_code(83).unwrap().iso_3166_2, "CN-TW");
        for missing in [
            0, 10, 16, 20, 24, 30, 39, 47, 55, 60, 66, 70, 72, 80, 84, 99,
        ] {
            assert!(Province::by_code(missing).is_none(), "{missing}");
        }
    }
}
