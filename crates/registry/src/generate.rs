//! A deterministic generator of synthetic, realistic registry records.
//!
//! The output depends only on the seed and the count: the same seed gives a byte-identical
//! file. ID numbers are unique by construction: record `i` is mapped through an affine
//! permutation `j = (a·i + b) mod N` of the space of `N = counties × days × 999` possible
//! (county, birth day, sequence) triples, with `a` coprime to `N`, so no two records share a
//! triple, and therefore an ID number, until all `N` (over five billion) are used.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use cyberid_domain::{CitizenIdNumber, FACE_DIMS, FaceTemplate, PersonName, PersonRecord};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::Date;
use time::macros::date;

pub use crate::face::FACE_QUANT_SCALE;
use crate::face::quantize;
use crate::file::RegistryWriter;
use crate::normal::fill_standard_normal;

/// The day the generated population's ages refer to: birth dates are spread uniformly over
/// the 100 years before it (ages 0 to 100 on this day). Fixed, not "today", so the output
/// depends only on seed and count.
pub const REFERENCE_DATE: Date = date!(2026 - 01 - 01);

/// Earliest generated birth date: exactly 100 years before [`REFERENCE_DATE`].
const FIRST_BIRTH_DATE: Date = date!(1926 - 01 - 01);
/// Days from [`FIRST_BIRTH_DATE`] up to, not including, [`REFERENCE_DATE`].
const BIRTH_DAYS: u64 = 36_525;
/// Sequence numbers 001..=999 (000 is not issued).
const SEQUENCES: u64 = 999;

/// A real county-level division (GB/T 2260), used as the region of generated ID numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct County {
    /// The 6-digit region code.
    pub code: &'static str,
    /// Chinese name (with its prefecture where the name alone is ambiguous).
    pub name_zh: &'static str,
    /// English name.
    pub name_en: &'static str,
}

const fn c(code: &'static str, name_zh: &'static str, name_en: &'static str) -> County {
    County {
        code,
        name_zh,
        name_en,
    }
}

/// County-level divisions used by the generator: a few urban districts of the capital of
/// each of the 31 mainland provinces (plus a few other large cities).
pub static COUNTIES: &[County] = &[
    c("110101", "北京市东城区", "Dongcheng, Beijing"),
    c("110102", "北京市西城区", "Xicheng, Beijing"),
    c("110105", "北京市朝阳区", "Chaoyang, Beijing"),
    c("110106", "北京市丰台区", "Fengtai, Beijing"),
    c("110107", "北京市石景山区", "Shijingshan, Beijing"),
    c("110108", "北京市海淀区", "Haidian, Beijing"),
    c("120101", "天津市和平区", "Heping, Tianjin"),
    c("120102", "天津市河东区", "Hedong, Tianjin"),
    c("120103", "天津市河西区", "Hexi, Tianjin"),
    c("120104", "天津市南开区", "Nankai, Tianjin"),
    c("120105", "天津市河北区", "Hebei, Tianjin"),
    c("130102", "石家庄市长安区", "Chang'an, Shijiazhuang"),
    c("130104", "石家庄市桥西区", "Qiaoxi, Shijiazhuang"),
    c("130105", "石家庄市新华区", "Xinhua, Shijiazhuang"),
    c("130202", "唐山市路南区", "Lunan, Tangshan"),
    c("130203", "唐山市路北区", "Lubei, Tangshan"),
    c("140105", "太原市小店区", "Xiaodian, Taiyuan"),
    c("140106", "太原市迎泽区", "Yingze, Taiyuan"),
    c("140107", "太原市杏花岭区", "Xinghualing, Taiyuan"),
    c("140109", "太原市万柏林区", "Wanbailin, Taiyuan"),
    c("150102", "呼和浩特市新城区", "Xincheng, Hohhot"),
    c("150103", "呼和浩特市回民区", "Huimin, Hohhot"),
    c("150104", "呼和浩特市玉泉区", "Yuquan, Hohhot"),
    c("150105", "呼和浩特市赛罕区", "Saihan, Hohhot"),
    c("210102", "沈阳市和平区", "Heping, Shenyang"),
    c("210103", "沈阳市沈河区", "Shenhe, Shenyang"),
    c("210104", "沈阳市大东区", "Dadong, Shenyang"),
    c("210105", "沈阳市皇姑区", "Huanggu, Shenyang"),
    c("210202", "大连市中山区", "Zhongshan, Dalian"),
    c("210203", "大连市西岗区", "Xigang, Dalian"),
    c("220102", "长春市南关区", "Nanguan, Changchun"),
    c("220103", "长春市宽城区", "Kuancheng, Changchun"),
    c("220104", "长春市朝阳区", "Chaoyang, Changchun"),
    c("220105", "长春市二道区", "Erdao, Changchun"),
    c("230102", "哈尔滨市道里区", "Daoli, Harbin"),
    c("230103", "哈尔滨市南岗区", "Nangang, Harbin"),
    c("230104", "哈尔滨市道外区", "Daowai, Harbin"),
    c("230110", "哈尔滨市香坊区", "Xiangfang, Harbin"),
    c("310101", "上海市黄浦区", "Huangpu, Shanghai"),
    c("310104", "上海市徐汇区", "Xuhui, Shanghai"),
    c("310105", "上海市长宁区", "Changning, Shanghai"),
    c("310106", "上海市静安区", "Jing'an, Shanghai"),
    c("310107", "上海市普陀区", "Putuo, Shanghai"),
    c("310115", "上海市浦东新区", "Pudong, Shanghai"),
    c("320102", "南京市玄武区", "Xuanwu, Nanjing"),
    c("320104", "南京市秦淮区", "Qinhuai, Nanjing"),
    c("320105", "南京市建邺区", "Jianye, Nanjing"),
    c("320106", "南京市鼓楼区", "Gulou, Nanjing"),
    c("320505", "苏州市虎丘区", "Huqiu, Suzhou"),
    c("320506", "苏州市吴中区", "Wuzhong, Suzhou"),
    c("330102", "杭州市上城区", "Shangcheng, Hangzhou"),
    c("330105", "杭州市拱墅区", "Gongshu, Hangzhou"),
    c("330106", "杭州市西湖区", "Xihu, Hangzhou"),
    c("330108", "杭州市滨江区", "Binjiang, Hangzhou"),
    c("330203", "宁波市海曙区", "Haishu, Ningbo"),
    c("340102", "合肥市瑶海区", "Yaohai, Hefei"),
    c("340103", "合肥市庐阳区", "Luyang, Hefei"),
    c("340104", "合肥市蜀山区", "Shushan, Hefei"),
    c("340111", "合肥市包河区", "Baohe, Hefei"),
    c("350102", "福州市鼓楼区", "Gulou, Fuzhou"),
    c("350103", "福州市台江区", "Taijiang, Fuzhou"),
    c("350104", "福州市仓山区", "Cangshan, Fuzhou"),
    c("350203", "厦门市思明区", "Siming, Xiamen"),
    c("350206", "厦门市湖里区", "Huli, Xiamen"),
    c("360102", "南昌市东湖区", "Donghu, Nanchang"),
    c("360103", "南昌市西湖区", "Xihu, Nanchang"),
    c("360104", "南昌市青云谱区", "Qingyunpu, Nanchang"),
    c("360111", "南昌市青山湖区", "Qingshanhu, Nanchang"),
    c("370102", "济南市历下区", "Lixia, Jinan"),
    c("370103", "济南市市中区", "Shizhong, Jinan"),
    c("370104", "济南市槐荫区", "Huaiyin, Jinan"),
    c("370105", "济南市天桥区", "Tianqiao, Jinan"),
    c("370202", "青岛市市南区", "Shinan, Qingdao"),
    c("370203", "青岛市市北区", "Shibei, Qingdao"),
    c("410102", "郑州市中原区", "Zhongyuan, Zhengzhou"),
    c("410103", "郑州市二七区", "Erqi, Zhengzhou"),
    c("410104", "郑州市管城回族区", "Guancheng, Zhengzhou"),
    c("410105", "郑州市金水区", "Jinshui, Zhengzhou"),
    c("420102", "武汉市江岸区", "Jiang'an, Wuhan"),
    c("420103", "武汉市江汉区", "Jianghan, Wuhan"),
    c("420104", "武汉市硚口区", "Qiaokou, Wuhan"),
    c("420105", "武汉市汉阳区", "Hanyang, Wuhan"),
    c("420106", "武汉市武昌区", "Wuchang, Wuhan"),
    c("430102", "长沙市芙蓉区", "Furong, Changsha"),
    c("430103", "长沙市天心区", "Tianxin, Changsha"),
    c("430104", "长沙市岳麓区", "Yuelu, Changsha"),
    c("430105", "长沙市开福区", "Kaifu, Changsha"),
    c("430111", "长沙市雨花区", "Yuhua, Changsha"),
    c("440103", "广州市荔湾区", "Liwan, Guangzhou"),
    c("440104", "广州市越秀区", "Yuexiu, Guangzhou"),
    c("440105", "广州市海珠区", "Haizhu, Guangzhou"),
    c("440106", "广州市天河区", "Tianhe, Guangzhou"),
    c("440111", "广州市白云区", "Baiyun, Guangzhou"),
    c("440303", "深圳市罗湖区", "Luohu, Shenzhen"),
    c("440304", "深圳市福田区", "Futian, Shenzhen"),
    c("440305", "深圳市南山区", "Nanshan, Shenzhen"),
    c("450102", "南宁市兴宁区", "Xingning, Nanning"),
    c("450103", "南宁市青秀区", "Qingxiu, Nanning"),
    c("450105", "南宁市江南区", "Jiangnan, Nanning"),
    c("450107", "南宁市西乡塘区", "Xixiangtang, Nanning"),
    c("460105", "海口市秀英区", "Xiuying, Haikou"),
    c("460106", "海口市龙华区", "Longhua, Haikou"),
    c("460107", "海口市琼山区", "Qiongshan, Haikou"),
    c("460108", "海口市美兰区", "Meilan, Haikou"),
    c("500101", "重庆市万州区", "Wanzhou, Chongqing"),
    c("500103", "重庆市渝中区", "Yuzhong, Chongqing"),
    c("500104", "重庆市大渡口区", "Dadukou, Chongqing"),
    c("500105", "重庆市江北区", "Jiangbei, Chongqing"),
    c("500106", "重庆市沙坪坝区", "Shapingba, Chongqing"),
    c("500107", "重庆市九龙坡区", "Jiulongpo, Chongqing"),
    c("510104", "成都市锦江区", "Jinjiang, Chengdu"),
    c("510105", "成都市青羊区", "Qingyang, Chengdu"),
    c("510106", "成都市金牛区", "Jinniu, Chengdu"),
    c("510107", "成都市武侯区", "Wuhou, Chengdu"),
    c("510108", "成都市成华区", "Chenghua, Chengdu"),
    c("520102", "贵阳市南明区", "Nanming, Guiyang"),
    c("520103", "贵阳市云岩区", "Yunyan, Guiyang"),
    c("520111", "贵阳市花溪区", "Huaxi, Guiyang"),
    c("520112", "贵阳市乌当区", "Wudang, Guiyang"),
    c("530102", "昆明市五华区", "Wuhua, Kunming"),
    c("530103", "昆明市盘龙区", "Panlong, Kunming"),
    c("530111", "昆明市官渡区", "Guandu, Kunming"),
    c("530112", "昆明市西山区", "Xishan, Kunming"),
    c("540102", "拉萨市城关区", "Chengguan, Lhasa"),
    c("540121", "拉萨市林周县", "Lhünzhub, Lhasa"),
    c("540124", "拉萨市曲水县", "Qüxü, Lhasa"),
    c("610102", "西安市新城区", "Xincheng, Xi'an"),
    c("610103", "西安市碑林区", "Beilin, Xi'an"),
    c("610104", "西安市莲湖区", "Lianhu, Xi'an"),
    c("610111", "西安市灞桥区", "Baqiao, Xi'an"),
    c("610112", "西安市未央区", "Weiyang, Xi'an"),
    c("610113", "西安市雁塔区", "Yanta, Xi'an"),
    c("620102", "兰州市城关区", "Chengguan, Lanzhou"),
    c("620103", "兰州市七里河区", "Qilihe, Lanzhou"),
    c("620104", "兰州市西固区", "Xigu, Lanzhou"),
    c("620105", "兰州市安宁区", "Anning, Lanzhou"),
    c("630102", "西宁市城东区", "Chengdong, Xining"),
    c("630103", "西宁市城中区", "Chengzhong, Xining"),
    c("630104", "西宁市城西区", "Chengxi, Xining"),
    c("630105", "西宁市城北区", "Chengbei, Xining"),
    c("640104", "银川市兴庆区", "Xingqing, Yinchuan"),
    c("640105", "银川市西夏区", "Xixia, Yinchuan"),
    c("640106", "银川市金凤区", "Jinfeng, Yinchuan"),
    c("650102", "乌鲁木齐市天山区", "Tianshan, Ürümqi"),
    c("650103", "乌鲁木齐市沙依巴克区", "Saybagh, Ürümqi"),
    c("650104", "乌鲁木齐市新市区", "Xinshi, Ürümqi"),
    c("650105", "乌鲁木齐市水磨沟区", "Shuimogou, Ürümqi"),
];

/// The 100 most common single-character surnames and four two-character ones, with rough
/// relative frequencies (hundredths of a percent of the population).
static SURNAMES: &[(&str, u32)] = &[
    ("王", 710),
    ("李", 700),
    ("张", 670),
    ("刘", 540),
    ("陈", 450),
    ("杨", 310),
    ("黄", 220),
    ("赵", 200),
    ("吴", 200),
    ("周", 190),
    ("徐", 130),
    ("孙", 120),
    ("马", 110),
    ("朱", 110),
    ("胡", 100),
    ("郭", 100),
    ("何", 90),
    ("高", 90),
    ("林", 90),
    ("罗", 80),
    ("郑", 80),
    ("梁", 70),
    ("谢", 60),
    ("宋", 50),
    ("唐", 50),
    ("许", 50),
    ("韩", 50),
    ("冯", 50),
    ("邓", 50),
    ("曹", 50),
    ("彭", 50),
    ("曾", 50),
    ("肖", 40),
    ("田", 40),
    ("董", 40),
    ("袁", 40),
    ("潘", 40),
    ("于", 40),
    ("蒋", 40),
    ("蔡", 40),
    ("余", 40),
    ("杜", 40),
    ("叶", 40),
    ("程", 30),
    ("苏", 30),
    ("魏", 30),
    ("吕", 30),
    ("丁", 30),
    ("任", 30),
    ("沈", 30),
    ("姚", 30),
    ("卢", 30),
    ("姜", 30),
    ("崔", 30),
    ("钟", 30),
    ("谭", 30),
    ("陆", 30),
    ("汪", 20),
    ("范", 20),
    ("金", 20),
    ("石", 20),
    ("廖", 20),
    ("贾", 20),
    ("夏", 20),
    ("韦", 20),
    ("付", 20),
    ("方", 20),
    ("白", 20),
    ("邹", 20),
    ("孟", 20),
    ("熊", 20),
    ("秦", 20),
    ("邱", 20),
    ("江", 20),
    ("尹", 20),
    ("薛", 20),
    ("闫", 20),
    ("段", 20),
    ("雷", 20),
    ("侯", 20),
    ("龙", 20),
    ("史", 20),
    ("陶", 10),
    ("黎", 10),
    ("贺", 10),
    ("顾", 10),
    ("毛", 10),
    ("郝", 10),
    ("龚", 10),
    ("邵", 10),
    ("万", 10),
    ("钱", 10),
    ("严", 10),
    ("覃", 10),
    ("武", 10),
    ("戴", 10),
    ("莫", 10),
    ("孔", 10),
    ("向", 10),
    ("汤", 10),
    ("欧阳", 8),
    ("司马", 3),
    ("诸葛", 2),
    ("上官", 2),
];

/// Given-name characters more often chosen for boys.
static MALE_CHARS: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "峰", "建", "国",
    "志", "文", "海", "东", "亮", "晨", "博", "轩", "睿", "哲", "子", "天", "正", "永", "成", "康",
    "鸿", "毅", "诚", "嘉", "阳", "泽",
];

/// Given-name characters more often chosen for girls.
static FEMALE_CHARS: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "桂", "英", "燕", "红", "婷", "雪",
    "琳", "晶", "慧", "颖", "倩", "洁", "萍", "梅", "莉", "兰", "月", "佳", "欣", "怡", "雨", "嘉",
    "思", "涵", "悦", "琪", "薇", "璐", "妍", "婉", "诗", "梦", "瑶", "蕾", "淑", "珍", "凤", "晓",
    "子", "文",
];

/// Share of given names with a single character, in percent.
const SINGLE_CHAR_GIVEN_NAME_PERCENT: u32 = 22;

/// Generates synthetic [`PersonRecord`]s from a seed.
///
/// Everything comes from one ChaCha8 stream seeded once, so records are cheap to make and
/// the sequence is reproducible. The iterator ends after [`Generator::capacity`] records,
/// the point at which ID numbers would start to repeat.
pub struct Generator {
    rng: ChaCha8Rng,
    index: u64,
    multiplier: u64,
    offset: u64,
    surname_cumulative: Vec<u32>,
}

impl Generator {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = Self::capacity();
        let mut multiplier = rng.random_range(1..n);
        while gcd(multiplier, n) != 1 {
            multiplier = multiplier % (n - 1) + 1;
        }
        let offset = rng.random_range(0..n);
        let surname_cumulative = SURNAMES
            .iter()
            .scan(0u32, |total, &(_, w)| {
                *total += w;
                Some(*total)
            })
            .collect();
        Self {
            rng,
            index: 0,
            multiplier,
            offset,
            surname_cumulative,
        }
    }

    /// How many distinct records a generator can produce: counties × birth days × 999.
    pub fn capacity() -> u64 {
        COUNTIES.len() as u64 * BIRTH_DAYS * SEQUENCES
    }

    /// Builds record number `self.index` (None only if the tables were inconsistent).
    fn make_record(&mut self) -> Option<PersonRecord> {
        let n = Self::capacity();
        let j = (u128::from(self.multiplier) * u128::from(self.index) + u128::from(self.offset))
            % u128::from(n);
        let j = u64::try_from(j).ok()?;
        let sequence = u16::try_from(j % SEQUENCES + 1).ok()?;
        let rest = j / SEQUENCES;
        let day = i32::try_from(rest % BIRTH_DAYS).ok()?;
        let county = COUNTIES.get(usize::try_from(rest / BIRTH_DAYS).ok()?)?;
        let birth_date = Date::from_julian_day(FIRST_BIRTH_DATE.to_julian_day() + day).ok()?;
        let id_number = CitizenIdNumber::compose(county.code, birth_date, sequence).ok()?;
        let sex = id_number.sex();
        let name = self.random_name(sex)?;
        let face = random_face(&mut self.rng);
        Some(PersonRecord {
            id_number,
            name,
            birth_date,
            sex,
            face,
        })
    }

    fn random_name(&mut self, sex: cyberid_domain::Sex) -> Option<PersonName> {
        let total = self.surname_cumulative.last().copied()?;
        let pick = self.rng.random_range(0..total);
        let surname = SURNAMES
            .get(self.surname_cumulative.partition_point(|&c| c <= pick))?
            .0;
        let pool = match sex {
            cyberid_domain::Sex::Male => MALE_CHARS,
            cyberid_domain::Sex::Female => FEMALE_CHARS,
        };
        let mut name = String::with_capacity(12);
        name.push_str(surname);
        let first = self.rng.random_range(0..pool.len());
        name.push_str(pool.get(first)?);
        if self.rng.random_range(0..100) >= SINGLE_CHAR_GIVEN_NAME_PERCENT {
            let mut second = self.rng.random_range(0..pool.len());
            if second == first {
                // Doubled characters are rare in real names; take the neighbour instead.
                second = (second + 1) % pool.len();
            }
            name.push_str(pool.get(second)?);
        }
        PersonName::parse(&name).ok()
    }
}

impl Iterator for Generator {
    type Item = PersonRecord;

    fn next(&mut self) -> Option<PersonRecord> {
        if self.index >= Self::capacity() {
            return None;
        }
        let record = self.make_record();
        self.index += 1;
        record
    }
}

/// A random unit-length face embedding, quantized.
fn random_face(rng: &mut ChaCha8Rng) -> FaceTemplate {
    let mut v = [0f32; FACE_DIMS];
    fill_standard_normal(rng, &mut v);
    quantize(&v)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Writes a registry file of `count` generated records; returns the number written.
pub fn write_registry(path: &Path, count: u64, seed: u64) -> io::Result<u64> {
    if count > Generator::capacity() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "at most {} distinct records can be generated",
                Generator::capacity()
            ),
        ));
    }
    let file = File::create(path)?;
    let mut writer = RegistryWriter::new(BufWriter::with_capacity(1 << 20, file))?;
    let mut written = 0u64;
    for record in Generator::new(seed).take(usize::try_from(count).unwrap_or(usize::MAX)) {
        writer.write(&record)?;
        written += 1;
    }
    writer.finish()?;
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use cyberid_domain::{Province, Sex, age_on};
    use std::collections::{HashMap, HashSet};

    #[test]
    fn constants_are_consistent() {
        assert_eq!(
            (REFERENCE_DATE - FIRST_BIRTH_DATE).whole_days(),
            BIRTH_DAYS as i64
        );
        assert_eq!(FIRST_BIRTH_DATE.replace_year(2026).unwrap(), REFERENCE_DATE);
        assert!(Generator::capacity() > 1_400_000_000);
        // The extreme birth days give ages 100 and 0 on the reference date.
        assert_eq!(age_on(FIRST_BIRTH_DATE, REFERENCE_DATE), Some(100));
        let last = FIRST_BIRTH_DATE + time::Duration::days(BIRTH_DAYS as i64 - 1);
        assert_eq!(last, date!(2025 - 12 - 31));
        assert_eq!(age_on(last, REFERENCE_DATE), Some(0));
    }

    #[test]
    fn county_table_is_valid_and_covers_mainland() {
        let mut per_province: HashMap<u8, usize> = HashMap::new();
        let mut codes = HashSet::new();
        for county in COUNTIES {
            assert!(codes.insert(county.code), "duplicate {}", county.code);
            // compose validates the format and the province prefix.
            let id = CitizenIdNumber::compose(county.code, date!(1990 - 01 - 01), 1).unwrap();
            *per_province.entry(id.province().code).or_default() += 1;
        }
        let mainland: Vec<&Province> = cyberid_domain::PROVINCES
            .iter()
            .filter(|p| p.is_mainland())
            .collect();
        assert_eq!(mainland.len(), 31);
        for p in mainland {
            let n = per_province.get(&p.code).copied().unwrap_or(0);
            assert!((3..=8).contains(&n), "{} has {n} counties", p.name_en);
        }
        assert_eq!(per_province.len(), 31);
    }

    #[test]
    fn same_seed_same_bytes_different_seed_differs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tsv");
        let b = dir.path().join("b.tsv");
        let c = dir.path().join("c.tsv");
        assert_eq!(write_registry(&a, 1_000, 7).unwrap(), 1_000);
        write_registry(&b, 1_000, 7).unwrap();
        write_registry(&c, 1_000, 8).unwrap();
        let (a, b, c) = (
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            std::fs::read(c).unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        // A shorter run is a prefix of a longer one.
        let short = dir.path().join("short.tsv");
        write_registry(&short, 10, 7).unwrap();
        assert!(a.starts_with(&std::fs::read(short).unwrap()));
    }

    #[test]
    fn unique_over_200k() {
        let mut seen = HashSet::with_capacity(200_000);
        for r in Generator::new(123).take(200_000) {
            assert!(seen.insert(r.id_number.as_str().to_owned()));
        }
        assert_eq!(seen.len(), 200_000);
    }

    #[test]
    fn affine_map_is_a_permutation_on_a_small_space() {
        // The same construction over a small N, checked exhaustively.
        let n = 3 * 5 * 999u64;
        for seed_a in [2u64, 7, 11, 1_000, 14_984] {
            let mut a = seed_a;
            while gcd(a, n) != 1 {
                a = a % (n - 1) + 1;
            }
            let hits: HashSet<u64> = (0..n).map(|i| (a * i + 17) % n).collect();
            assert_eq!(hits.len() as u64, n);
        }
    }

    #[test]
    fn records_are_consistent_and_plausible() {
        let mut males = 0;
        let mut surnames: HashMap<String, usize> = HashMap::new();
        let mut single = 0;
        let mut ages = HashSet::new();
        let mut counties = HashSet::new();
        let mut clamped = 0;
        let records: Vec<_> = Generator::new(4).take(20_000).collect();
        for r in &records {
            let parsed = CitizenIdNumber::parse(r.id_number.as_str()).unwrap();
            assert_eq!(parsed.birth_date(), r.birth_date);
            assert_eq!(parsed.sex(), r.sex);
            assert_eq!(parsed.province(), r.province());
            assert!(r.province().is_mainland());
            assert!(COUNTIES.iter().any(|c| c.code == parsed.region_code()));
            counties.insert(parsed.region_code().to_owned());
            let seq = parsed.sequence();
            assert!((1..=999).contains(&seq));
            assert_eq!(r.sex == Sex::Male, seq % 2 == 1);
            let age = age_on(r.birth_date, REFERENCE_DATE).unwrap();
            assert!(age <= 100, "age {age}");
            assert!(r.birth_date < REFERENCE_DATE);
            ages.insert(age);
            if r.sex == Sex::Male {
                males += 1;
            }
            let name: Vec<char> = r.name.as_str().chars().collect();
            assert!((2..=4).contains(&name.len()));
            let surname = SURNAMES
                .iter()
                .map(|s| s.0)
                .find(|s| r.name.as_str().starts_with(s) && name.len() > s.chars().count())
                .unwrap();
            let given = &r.name.as_str()[surname.len()..];
            let pool = if r.sex == Sex::Male {
                MALE_CHARS
            } else {
                FEMALE_CHARS
            };
            for ch in given.chars() {
                assert!(pool.contains(&ch.to_string().as_str()), "{ch}");
            }
            if given.chars().count() == 1 {
                single += 1;
            }
            *surnames.entry(surname.to_owned()).or_default() += 1;
            let norm: f64 = r
                .face
                .components()
                .iter()
                .map(|&x| f64::from(x).powi(2))
                .sum::<f64>()
                .sqrt();
            // Unit length times the scale, give or take rounding and the rare clamped component.
            assert!((300.0..=405.0).contains(&norm), "{norm}");
            if (norm - f64::from(FACE_QUANT_SCALE)).abs() > 3.0 {
                clamped += 1;
            }
        }
        assert!(clamped < records.len() / 20, "{clamped}");
        // Ages 0..=99 all occur (100 only for one birth day in 36,525); sexes and regions are
        // mixed; surnames follow frequency.
        assert!((0..=99).all(|a| ages.contains(&a)));
        assert!((9_500..10_500).contains(&males), "{males}");
        assert!(counties.len() > 140);
        assert!(surnames["王"] > surnames["汤"] * 20);
        assert!(surnames.len() > 90);
        assert!((3_500..5_300).contains(&single), "{single}");
        let distinct_names: HashSet<_> = records.iter().map(|r| r.name.as_str()).collect();
        assert!(distinct_names.len() > 5_000);
    }

    #[test]
    fn refuses_more_than_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_registry(&dir.path().join("x"), Generator::capacity() + 1, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
